// Probes of the local app. AppProbe: reachability for /readyz (ready only once the app answers), a TCP
// connect with a short timeout, cached briefly so a tight probe loop does not open a connection per request; it logs
// when the app stops or starts accepting connections (changes only: the kubelet probes every few seconds).
// forwardAppProbe: an app container's own HTTP probe, forwarded on loopback for /app-health/<container>/<kind>.
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { formatHostPort, type HostPort } from '../config/index.js';
import type { Logger } from '../telemetry/index.js';

const PROBE_TIMEOUT_MS = 1_000;
const CACHE_MS = 500;

/** One look at the app: connected, or the error code of the failed connect (`ETIMEDOUT` when it never answered). */
export type AppProbeResult = { readonly ok: true } | { readonly ok: false; readonly code: string };

export class AppProbe {
  readonly #address: HostPort;
  readonly #logger: Logger | undefined;
  #last: { at: number; result: AppProbeResult } | undefined;
  #inFlight: Promise<AppProbeResult> | undefined;
  /** undefined until the first look; an app that is up from the start is not logged. */
  #reachable: boolean | undefined;

  constructor(address: HostPort, options: { readonly logger?: Logger } = {}) {
    this.#address = address;
    this.#logger = options.logger;
  }

  /** `host:port` as written in the config, IPv6 in brackets. */
  get address(): string {
    return formatHostPort(this.#address);
  }

  async reachable(): Promise<boolean> {
    return (await this.check()).ok;
  }

  check(): Promise<AppProbeResult> {
    const now = Date.now();
    if (this.#last !== undefined && now - this.#last.at < CACHE_MS) return Promise.resolve(this.#last.result);
    this.#inFlight ??= this.#probe().then((result) => {
      this.#last = { at: Date.now(), result };
      this.#inFlight = undefined;
      this.#logChange(result);
      return result;
    });
    return this.#inFlight;
  }

  // Without a line here a sidecar that never turns ready says nothing at all: /readyz is all the user had to go on.
  #logChange(result: AppProbeResult): void {
    const was = this.#reachable;
    this.#reachable = result.ok;
    if (result.ok) {
      if (was === false)
        this.#logger?.warn({ event: 'app_reachable', app: this.address }, 'app accepts connections again');
    } else if (was !== false) {
      this.#logger?.warn(
        { event: 'app_unreachable', app: this.address, code: result.code },
        'app not accepting connections: not ready until it does',
      );
    }
  }

  #probe(): Promise<AppProbeResult> {
    return new Promise((resolve) => {
      const socket = connect({ host: this.#address.host, port: this.#address.port });
      const done = (result: AppProbeResult) => {
        socket.destroy();
        resolve(result);
      };
      socket.setTimeout(PROBE_TIMEOUT_MS, () => done({ ok: false, code: 'ETIMEDOUT' }));
      socket.once('connect', () => done({ ok: true }));
      socket.once('error', (error: NodeJS.ErrnoException) => done({ ok: false, code: error.code ?? 'error' }));
    });
  }
}

/** Where an app container's own probe is answered: a port on 127.0.0.1 and a path (from `admin.appProbes`). */
export interface AppProbeForwardTarget {
  readonly port: number;
  readonly path: string;
}

const FORWARD_TIMEOUT_MS = 5_000;

/** The app's probe body is read and thrown away; past this much the connection is dropped (status is known). */
const MAX_PROBE_BODY_BYTES = 64 * 1024;

/**
 * A probe path as the kubelet sends it: what is not printable ASCII (a space, `żółw`) percent-encoded as UTF-8, the
 * rest as written. Node refuses such a path raw, so a probe that worked before injection failed on every call after.
 */
export function wirePath(path: string): string {
  return path.replace(/[^\x21-\x7e]+/g, (run) =>
    Array.from(Buffer.from(run, 'utf8'), (byte) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  );
}

/**
 * Asks the app's own health endpoint on loopback, as the kubelet would have (`/app-health/<container>/<kind>`).
 * Resolves to the app's status code, or 503 when the app cannot be reached or does not answer in time. The host is
 * always 127.0.0.1: a probe can reach the app in this pod and nothing else.
 */
export function forwardAppProbe(
  target: AppProbeForwardTarget,
  options: { readonly timeoutMs?: number; readonly signal?: AbortSignal; readonly userAgent?: string } = {},
): Promise<number> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (status: number) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      request.destroy();
      resolve(status);
    };
    const request = httpRequest(
      {
        host: '127.0.0.1',
        port: target.port,
        path: wirePath(target.path),
        method: 'GET',
        agent: false,
        headers: {
          host: `127.0.0.1:${target.port}`,
          'user-agent': options.userAgent ?? 'meshauth-probe',
          connection: 'close',
        },
      },
      (response) => {
        const status = response.statusCode ?? 503;
        let bytes = 0;
        response.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes > MAX_PROBE_BODY_BYTES) finish(status);
        });
        response.once('end', () => finish(status));
        response.once('error', () => finish(status));
      },
    );
    const timer = setTimeout(() => finish(503), options.timeoutMs ?? FORWARD_TIMEOUT_MS);
    const onAbort = () => finish(503);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    request.once('error', () => finish(503));
    request.end();
  });
}
