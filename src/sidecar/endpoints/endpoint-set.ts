// The endpoints of one route address (`orders.shop.svc:15006`, or `{host}:15006` filled in): every A/AAAA
// address of the name, re-resolved after the records' TTL (bounded, resolve-schedule.ts), with endpoints that
// disappear drained (their in-flight streams finish, no new ones). Each request picks an endpoint by power of two
// choices on streams in flight (balancer.ts), skipping ejected ones (ejection.ts) unless all are ejected.
// Gauges `meshauth_endpoints{route,state}` move by deltas, so sets of one pattern route add up under its key.
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Gauge } from 'prom-client';
import { MeshauthError } from '../../errors/index.js';
import type { SpiffeId } from '../../identity/index.js';
import { pickOfTwo, type RandomIndex, xorshiftRandom } from './balancer.js';
import { MAX_ENDPOINTS_PER_NAME } from './dns-answer.js';
import type { AddressResolver, Resolution } from './dns-resolver.js';
import { isAvailable, startProbe } from './ejection.js';
import { Endpoint, type EndpointContext, type EndpointOwner } from './endpoint.js';
import { failureDelay, RESOLVE_BOUNDS, refreshDelay } from './resolve-schedule.js';

export interface EndpointSetOptions {
  readonly routeKey: string;
  /** Host of the address: a DNS name or an IP literal. */
  readonly name: string;
  readonly port: number;
  readonly accepts: ((id: SpiffeId) => boolean) | undefined;
  readonly context: EndpointContext;
  readonly resolver: AddressResolver;
  /** Milliseconds of a monotonic clock for when the name was last asked (default performance.now; tests move it). */
  readonly clock?: () => number;
}

type GaugeChild = ReturnType<Gauge<'route' | 'state'>['labels']>;

const random: RandomIndex = xorshiftRandom();
/**
 * Addresses a log line names: drained endpoints get a line each up to this many (more, a record set replaced
 * wholesale, share one line), and a warning about an answer names this many of its ignored addresses.
 */
const NAMED_PER_LINE = 3;

export class EndpointSet implements EndpointOwner {
  readonly routeKey: string;
  readonly servername: string;
  readonly accepts: ((id: SpiffeId) => boolean) | undefined;
  /** performance.now() of the last pick (idle sets are closed by their owner). */
  lastUsed = performance.now();
  readonly #port: number;
  readonly #context: EndpointContext;
  readonly #resolver: AddressResolver;
  #endpoints: Endpoint[] = [];
  readonly #ejected = new Set<Endpoint>();
  readonly #active: GaugeChild;
  readonly #ejectedGauge: GaugeChild;
  /** Picks waiting for the first resolution: the set must not be closed under them. */
  #waiting = 0;
  #resolved = false;
  #failures = 0;
  /** Answers in a row with no address: asked again with the failures' backoff, not every second. */
  #empty = 0;
  /** The ignored addresses and cap overflow last warned about, so that an unchanged answer is not logged again. */
  #warnedAnswer = '';
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** The query under way, if any (picks waiting for addresses wait on it); #clock() when the last one started. */
  #querying: Promise<void> | undefined;
  #queriedAt = 0;
  readonly #clock: () => number;

  constructor(options: EndpointSetOptions) {
    this.routeKey = options.routeKey;
    this.servername = options.name;
    this.accepts = options.accepts;
    this.#port = options.port;
    this.#context = options.context;
    this.#resolver = options.resolver;
    this.#clock = options.clock ?? (() => performance.now());
    this.#active = options.context.metrics.endpoints.labels(options.routeKey, 'active');
    this.#ejectedGauge = options.context.metrics.endpoints.labels(options.routeKey, 'ejected');
    if (isIP(options.name) !== 0) {
      this.#update([options.name], []);
      this.#resolved = true;
    } else {
      void this.#query();
    }
  }

  get endpoints(): readonly Endpoint[] {
    return this.#endpoints;
  }

  /** Requests in flight on its endpoints, and those waiting for the name's first addresses. */
  get inflight(): number {
    let sum = this.#waiting;
    for (const endpoint of this.#endpoints) sum += endpoint.inflight;
    return sum;
  }

  /**
   * An endpoint for the next request (`skip`: the one that just failed, avoided when there is another); a promise
   * until the name resolved for the first time. Rejects / returns a MeshauthError when the name has no address.
   */
  pick(skip?: Endpoint): Endpoint | Promise<Endpoint> {
    this.lastUsed = performance.now();
    if (!this.#resolved) {
      this.#waiting += 1;
      return (this.#querying ?? Promise.resolve()).then(() => {
        this.#waiting -= 1;
        const endpoint = this.#pickNow(skip);
        if (endpoint === undefined) throw this.#noEndpoint();
        return endpoint;
      });
    }
    if (this.#endpoints.length === 0 && this.#mayAskAgain()) {
      // The name had no address, and its next query waits out a backoff: a request asks now (at most once a second),
      // so a Service whose pods all became ready is found by the next caller, not up to 30 s later.
      this.#resolved = false;
      if (this.#querying === undefined) void this.#query();
      return this.pick(skip);
    }
    const endpoint = this.#pickNow(skip);
    if (endpoint === undefined) return Promise.reject(this.#noEndpoint());
    return endpoint;
  }

  #mayAskAgain(): boolean {
    return !this.#closed && this.#clock() - this.#queriedAt >= RESOLVE_BOUNDS.minMs;
  }

  /** One query now, the scheduled one cancelled (it is scheduled again when this one ends). */
  #query(): Promise<void> {
    clearTimeout(this.#timer);
    this.#queriedAt = this.#clock();
    const querying = this.#resolve().finally(() => {
      if (this.#querying === querying) this.#querying = undefined;
    });
    this.#querying = querying;
    return querying;
  }

  /** True when a pick that skips `endpoint` can find another one the balancing takes now (not ejected, or due a probe). */
  hasOtherAvailable(endpoint: Endpoint): boolean {
    const now = performance.now();
    return this.#endpoints.some((other) => other !== endpoint && isAvailable(other.health, now));
  }

  /** New credentials: every endpoint connects again on its next request. */
  retire(): void {
    for (const endpoint of this.#endpoints) endpoint.retire();
  }

  async close(deadline: number): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    const endpoints = this.#endpoints;
    this.#endpoints = [];
    for (const endpoint of endpoints) this.#gaugeRemove(endpoint);
    await Promise.all(endpoints.map((e) => e.close(deadline)));
  }

  ejectionChanged(endpoint: Endpoint, ejected: boolean): void {
    if (endpoint.removed) return;
    if (ejected && !this.#ejected.has(endpoint)) {
      this.#ejected.add(endpoint);
      this.#active.dec();
      this.#ejectedGauge.inc();
    } else if (!ejected && this.#ejected.delete(endpoint)) {
      this.#ejectedGauge.dec();
      this.#active.inc();
    }
  }

  #pickNow(skip: Endpoint | undefined): Endpoint | undefined {
    const all = this.#endpoints;
    if (this.#ejected.size === 0) return pickOfTwo(all, random, skip);
    const now = performance.now();
    const available = all.filter((e) => isAvailable(e.health, now));
    // All ejected: better to try one than to fail every request (panic routing, as Envoy does).
    const chosen = pickOfTwo(available.length > 0 ? available : all, random, skip);
    if (chosen !== undefined) startProbe(chosen.health, now);
    return chosen;
  }

  #noEndpoint(): MeshauthError {
    return new MeshauthError('MESHAUTH_ERR_PEER_UNAVAILABLE', `${this.servername} has no address`, {
      reason: 'no_endpoints',
      detail: { route: this.routeKey },
    });
  }

  async #resolve(): Promise<void> {
    let delay: number;
    try {
      const resolution = await this.#resolver.resolve(this.servername);
      if (this.#closed) return;
      this.#failures = 0;
      this.#warnAnswer(resolution);
      this.#update(resolution.addresses, resolution.failedFamilies);
      // A name with no address (a typo, a pattern route asked for names that do not exist) is asked again with
      // backoff: at a query a second, a local process could make the sidecar flood the cluster DNS. A request to it
      // asks at once (pick), so the backoff delays only the queries nobody waits for.
      this.#empty = resolution.addresses.length === 0 ? this.#empty + 1 : 0;
      delay = this.#empty > 0 ? failureDelay(this.#empty) : refreshDelay(resolution.ttlSeconds);
    } catch (error) {
      if (this.#closed) return;
      this.#failures += 1;
      delay = failureDelay(this.#failures);
      this.#context.logger.warn(
        {
          direction: 'outbound',
          route: this.routeKey,
          name: this.servername,
          attempt: this.#failures,
          retryInMs: delay,
          error: error instanceof Error ? ((error as { code?: string }).code ?? error.message) : String(error),
        },
        this.#endpoints.length > 0
          ? 'DNS resolution failed; keeping the last known endpoints'
          : 'DNS resolution failed; no endpoints yet',
      );
    }
    this.#resolved = true;
    this.#timer = setTimeout(() => void this.#query(), delay);
    this.#timer.unref();
  }

  /**
   * Adds new addresses, drains the ones that disappeared; keeps the endpoints (and sessions) of the rest, and those
   * of an address family whose query failed this time.
   */
  #update(addresses: readonly string[], failedFamilies: readonly (4 | 6)[]): void {
    const wanted = new Set(addresses);
    const kept: Endpoint[] = [];
    const removed: Endpoint[] = [];
    for (const endpoint of this.#endpoints) {
      if (wanted.has(endpoint.address)) {
        kept.push(endpoint);
        wanted.delete(endpoint.address);
      } else if (failedFamilies.includes(isIP(endpoint.address) as 4 | 6)) {
        kept.push(endpoint);
      } else {
        this.#gaugeRemove(endpoint);
        endpoint.remove();
        removed.push(endpoint);
      }
    }
    for (const address of wanted) {
      kept.push(new Endpoint(address, this.#port, this, this.#context));
      this.#active.inc();
    }
    this.#endpoints = kept;
    this.#logRemoved(removed);
  }

  /** One line per drained endpoint, or one line for them all when a record set was replaced wholesale. */
  #logRemoved(removed: readonly Endpoint[]): void {
    const message = 'endpoint removed (no longer in DNS); draining';
    const fields = { direction: 'outbound', route: this.routeKey };
    if (removed.length <= NAMED_PER_LINE) {
      for (const endpoint of removed) this.#context.logger.info({ ...fields, endpoint: endpoint.authority }, message);
      return;
    }
    const endpoints = removed.slice(0, NAMED_PER_LINE).map((e) => e.authority);
    this.#context.logger.info({ ...fields, count: removed.length, endpoints }, message);
  }

  /** Warns once per distinct answer that had addresses no workload listens on, or more than the cap. */
  #warnAnswer(resolution: Resolution): void {
    const key = `${resolution.ignored.join(',')}|${resolution.overCap}`;
    if (key === this.#warnedAnswer) return;
    this.#warnedAnswer = key;
    const fields = { direction: 'outbound', route: this.routeKey, name: this.servername };
    if (resolution.ignored.length > 0) {
      this.#context.logger.warn(
        { ...fields, ignored: resolution.ignored.slice(0, NAMED_PER_LINE), count: resolution.ignored.length },
        'DNS answer holds addresses no workload listens on (unspecified, multicast, link-local); ignored',
      );
    }
    if (resolution.overCap > 0) {
      this.#context.logger.warn(
        { ...fields, cap: MAX_ENDPOINTS_PER_NAME, ignoredCount: resolution.overCap },
        'DNS answer holds more addresses than the endpoints kept per name; the rest ignored',
      );
    }
  }

  #gaugeRemove(endpoint: Endpoint): void {
    if (this.#ejected.delete(endpoint)) this.#ejectedGauge.dec();
    else this.#active.dec();
  }
}
