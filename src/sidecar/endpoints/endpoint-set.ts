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
import type { AddressResolver } from './dns-resolver.js';
import { isAvailable, startProbe } from './ejection.js';
import { Endpoint, type EndpointContext, type EndpointOwner } from './endpoint.js';
import { failureDelay, refreshDelay } from './resolve-schedule.js';

export interface EndpointSetOptions {
  readonly routeKey: string;
  /** Host of the address: a DNS name or an IP literal. */
  readonly name: string;
  readonly port: number;
  readonly accepts: ((id: SpiffeId) => boolean) | undefined;
  readonly context: EndpointContext;
  readonly resolver: AddressResolver;
}

type GaugeChild = ReturnType<Gauge<'route' | 'state'>['labels']>;

const random: RandomIndex = xorshiftRandom();

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
  #firstResolution: Promise<void> | undefined;
  /** Picks waiting for the first resolution: the set must not be closed under them. */
  #waiting = 0;
  #resolved = false;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: EndpointSetOptions) {
    this.routeKey = options.routeKey;
    this.servername = options.name;
    this.accepts = options.accepts;
    this.#port = options.port;
    this.#context = options.context;
    this.#resolver = options.resolver;
    this.#active = options.context.metrics.endpoints.labels(options.routeKey, 'active');
    this.#ejectedGauge = options.context.metrics.endpoints.labels(options.routeKey, 'ejected');
    if (isIP(options.name) !== 0) {
      this.#update([options.name]);
      this.#resolved = true;
    } else {
      this.#firstResolution = this.#resolve();
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
      return (this.#firstResolution ?? Promise.resolve()).then(() => {
        this.#waiting -= 1;
        const endpoint = this.#pickNow(skip);
        if (endpoint === undefined) throw this.#noEndpoint();
        return endpoint;
      });
    }
    const endpoint = this.#pickNow(skip);
    if (endpoint === undefined) return Promise.reject(this.#noEndpoint());
    return endpoint;
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
      this.#update(resolution.addresses);
      delay = refreshDelay(resolution.ttlSeconds);
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
    this.#timer = setTimeout(() => void this.#resolve(), delay);
    this.#timer.unref();
  }

  /** Adds new addresses, drains the ones that disappeared; keeps the endpoints (and sessions) of the rest. */
  #update(addresses: readonly string[]): void {
    const wanted = new Set(addresses);
    const kept: Endpoint[] = [];
    for (const endpoint of this.#endpoints) {
      if (wanted.has(endpoint.address)) {
        kept.push(endpoint);
        wanted.delete(endpoint.address);
      } else {
        this.#gaugeRemove(endpoint);
        endpoint.remove();
        this.#context.logger.info(
          { direction: 'outbound', route: this.routeKey, endpoint: endpoint.authority },
          'endpoint removed (no longer in DNS); draining',
        );
      }
    }
    for (const address of wanted) {
      kept.push(new Endpoint(address, this.#port, this, this.#context));
      this.#active.inc();
    }
    this.#endpoints = kept;
  }

  #gaugeRemove(endpoint: Endpoint): void {
    if (this.#ejected.delete(endpoint)) this.#ejectedGauge.dec();
    else this.#active.dec();
  }
}
