// Per-decision lazily derived request attributes (normalized host, the path as deny rules read it, parsed source IP,
// local times). One instance per compiled policy is reset for every decision: decide() is synchronous, so reuse is safe
// and saves allocation.
import type { AuthzRequest } from '../authz-request.js';
import { normalizeHost } from './match-host.js';
import { type IpAddress, parseIp } from './match-ip.js';
import { cutAtEscapedDelimiter, pathMatchForm } from './match-path.js';
import { type LocalTime, localTime } from './match-time.js';

export class RequestContext {
  #request: AuthzRequest | undefined;
  #host: string | undefined;
  #decodedPath: string | undefined;
  /** null: the path has no escaped `?` or `#`. */
  #cutPath: string | null | undefined;
  #ip: IpAddress | null | undefined;
  readonly #times = new Map<Intl.DateTimeFormat, LocalTime>();

  reset(request: AuthzRequest): this {
    this.#request = request;
    this.#host = undefined;
    this.#decodedPath = undefined;
    this.#cutPath = undefined;
    this.#ip = undefined;
    if (this.#times.size > 0) this.#times.clear();
    return this;
  }

  get host(): string {
    this.#host ??= normalizeHost(this.#req().host);
    return this.#host;
  }

  /** The path as deny rules compare it (pathMatchForm). */
  get decodedPath(): string {
    this.#decodedPath ??= pathMatchForm(this.#req().path);
    return this.#decodedPath;
  }

  /** The match form cut at its first escaped `?` or `#` (cutAtEscapedDelimiter), or undefined when it has none. */
  get cutPath(): string | undefined {
    if (this.#cutPath === undefined) this.#cutPath = cutAtEscapedDelimiter(this.decodedPath) ?? null;
    return this.#cutPath ?? undefined;
  }

  /** The parsed source address, or undefined when it does not parse (then no sourceIps condition matches). */
  get ip(): IpAddress | undefined {
    if (this.#ip === undefined) this.#ip = parseIp(this.#req().sourceIp) ?? null;
    return this.#ip ?? undefined;
  }

  localTime(formatter: Intl.DateTimeFormat): LocalTime {
    let time = this.#times.get(formatter);
    if (time === undefined) {
      time = localTime(formatter, this.#req().now);
      this.#times.set(formatter, time);
    }
    return time;
  }

  #req(): AuthzRequest {
    if (this.#request === undefined) throw new Error('RequestContext used before reset()');
    return this.#request;
  }
}
