// Resolves route address names to IP addresses. By default through getaddrinfo — the system resolver as a pod's
// apps use it: resolv.conf's search list and ndots (`orders.shop` becomes `orders.shop.svc.cluster.local` before it
// could ever reach public DNS, where `.shop` is a real top-level domain) and /etc/hosts — with a fixed 5 s
// re-resolution (getaddrinfo reports no TTL; Kubernetes Service records carry 5 s). With `outbound.dns.servers`:
// A and AAAA through node:dns Resolver (c-ares) against those servers, with the records' TTLs, names used as
// written. Every query is counted in `meshauth_dns_resolutions_total{result}` (success, partial, empty, failure).
import { lookup, Resolver } from 'node:dns';
import { formatHostPort, type HostPort } from '../../config/index.js';
import type { Metrics } from '../../telemetry/index.js';
import { smallestTtl, usableAddresses } from './dns-answer.js';

export interface Resolution {
  /** Distinct dialable addresses, at most MAX_ENDPOINTS_PER_NAME (dns-answer.ts). */
  readonly addresses: readonly string[];
  /** Smallest record TTL in seconds (0 when the name has no address). */
  readonly ttlSeconds: number;
  /** Addresses of the answer dropped as no workload's (unspecified, multicast, link-local). */
  readonly ignored: readonly string[];
  /** Dialable addresses past the cap. */
  readonly overCap: number;
  /**
   * The address families whose query failed while the other answered: their endpoints are kept as they were, as
   * when the whole query fails (one lost AAAA query must not drain every IPv6 endpoint).
   */
  readonly failedFamilies: readonly (4 | 6)[];
}

const NO_ADDRESS: Resolution = Object.freeze({
  addresses: [],
  ttlSeconds: 0,
  ignored: [],
  overCap: 0,
  failedFamilies: [],
});

/** The TTL assumed for answers that carry none (getaddrinfo). */
const LOOKUP_TTL_SECONDS = 5;
const NO_RECORDS = new Set(['ENODATA', 'ENOTFOUND', 'NODATA', 'NOTFOUND']);

/** `ttl` is missing past the 256th record of an answer. */
type RecordWithTtl = { readonly address: string; readonly ttl: number | undefined };

export class AddressResolver {
  readonly #resolver: Resolver;
  readonly #custom: boolean;
  readonly #metrics: Metrics;

  constructor(servers: readonly HostPort[], metrics: Metrics) {
    this.#resolver = new Resolver({ timeout: 2_000, tries: 2 });
    this.#custom = servers.length > 0;
    if (this.#custom) this.#resolver.setServers(servers.map(formatHostPort));
    this.#metrics = metrics;
  }

  /**
   * Every A and AAAA address of `name`. Resolves with no addresses when the DNS says the name has none (the
   * endpoints go away); rejects when the DNS could not be asked (the caller keeps what it had).
   */
  async resolve(name: string): Promise<Resolution> {
    if (!this.#custom) return this.#lookup(name);
    const [v4, v6] = await Promise.allSettled([this.#query(name, 4), this.#query(name, 6)]);
    const records: RecordWithTtl[] = [];
    if (v4.status === 'fulfilled') records.push(...v4.value);
    if (v6.status === 'fulfilled') records.push(...v6.value);
    const failed = (r: PromiseSettledResult<unknown>) => r.status === 'rejected' && !NO_RECORDS.has(codeOf(r.reason));
    const usable = usableAddresses(records.map((r) => r.address));
    if (usable.addresses.length === 0) {
      const failure = [v4, v6].find(failed);
      if (failure !== undefined && failure.status === 'rejected') {
        this.#metrics.dnsResolutions.inc({ result: 'failure' });
        throw failure.reason;
      }
      this.#metrics.dnsResolutions.inc({ result: 'empty' });
      return { ...NO_ADDRESS, ignored: usable.ignored };
    }
    const failedFamilies: (4 | 6)[] = [];
    if (failed(v4)) failedFamilies.push(4);
    if (failed(v6)) failedFamilies.push(6);
    // `partial`: one family's query failed while the other answered; that family's endpoints stay as they were.
    this.#metrics.dnsResolutions.inc({ result: failedFamilies.length === 0 ? 'success' : 'partial' });
    return { ...usable, ttlSeconds: smallestTtl(records.map((r) => r.ttl)), failedFamilies };
  }

  async #lookup(name: string): Promise<Resolution> {
    try {
      const usable = usableAddresses(await lookupAll(name));
      const found = usable.addresses.length > 0;
      this.#metrics.dnsResolutions.inc({ result: found ? 'success' : 'empty' });
      return { ...usable, ttlSeconds: found ? LOOKUP_TTL_SECONDS : 0, failedFamilies: [] };
    } catch (error) {
      if (NO_RECORDS.has(codeOf(error))) {
        this.#metrics.dnsResolutions.inc({ result: 'empty' });
        return NO_ADDRESS;
      }
      this.#metrics.dnsResolutions.inc({ result: 'failure' });
      throw error;
    }
  }

  cancel(): void {
    this.#resolver.cancel();
  }

  #query(name: string, family: 4 | 6): Promise<RecordWithTtl[]> {
    return new Promise((resolve, reject) => {
      const done = (error: NodeJS.ErrnoException | null, records: RecordWithTtl[]) =>
        error === null ? resolve(records) : reject(error);
      if (family === 4) this.#resolver.resolve4(name, { ttl: true }, done);
      else this.#resolver.resolve6(name, { ttl: true }, done);
    });
  }
}

function lookupAll(name: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    lookup(name, { all: true }, (error, addresses) =>
      error === null ? resolve(addresses.map((a) => a.address)) : reject(error),
    );
  });
}

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : '';
}
