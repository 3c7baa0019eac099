// The outbound's view of its peers: one EndpointSet per route address (a DNS name's endpoints, or one IP), each
// endpoint with its own HTTP/2 session (HTTP/1.1 pools when the peer chose http/1.1 by ALPN or with
// `outbound.http2: false`). Pattern routes (`*.shop.svc.cluster.local` → `{host}:15006`) get a set per requested
// host, with that host's expected IDs; sets unused for a while are closed, and their number is bounded. An exact
// route's one set is never closed before shutdown: the config bounds them, and its last known endpoints must outlive
// a DNS outage however long the route sat idle (its idle sessions still close, endpoint.ts).
// Rotation: the one shared client context switches (ClientTlsContext); every endpoint then reconnects on its next
// request while streams in flight finish on the old session.
import { performance } from 'node:perf_hooks';
import type { CredentialHolder } from '../../agent/credential-holder.js';
import {
  expectedIdsFor,
  formatHostPort,
  HOST_TEMPLATE,
  idIsExpected,
  type RouteConfig,
  routeAddressFor,
  type SidecarConfig,
} from '../../config/index.js';
import { NAMESPACE_TEMPLATE } from '../../config/route-match.js';
import type { MeshauthError } from '../../errors/index.js';
import type { SpiffeId } from '../../identity/index.js';
import type { Logger, Metrics } from '../../telemetry/index.js';
import { ClientTlsContext } from '../../tls/index.js';
import { AddressResolver } from '../endpoints/dns-resolver.js';
import type { EndpointContext } from '../endpoints/endpoint.js';
import { EndpointSet } from '../endpoints/endpoint-set.js';
import { namespaceRefusal } from './namespace-refusal.js';

export interface PeerSessionsOptions {
  readonly config: SidecarConfig;
  readonly holder: CredentialHolder;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** The workload's one client TLS context (sidecar.ts shares it with the TCP tunnels); created here when absent. */
  readonly clientTls?: ClientTlsContext;
  readonly now?: () => Date;
  /** When pattern routes' idle sets are closed (tests shorten it); SET_SWEEP otherwise. */
  readonly sweep?: SetSweep;
}

export interface SetSweep {
  /** A set nobody picked from for this long, with nothing in flight, is closed. */
  readonly idleMs: number;
  /** How often sets are checked. */
  readonly intervalMs: number;
}

/** Pattern routes create a set per requested host: those unused for 5 minutes go. */
const SET_SWEEP: SetSweep = Object.freeze({ idleMs: 5 * 60_000, intervalMs: 30_000 });
/** Upper bound on pattern routes' sets (distinct hosts called); idle ones are closed to make room. */
const MAX_SETS = 1_024;

/** Places a full table frees at once (#sweep). */
const EVICTED_AT_ONCE = 64;

export class PeerSessions {
  readonly #config: SidecarConfig;
  readonly #context: EndpointContext;
  readonly #tls: ClientTlsContext;
  /** True when this object created #tls (and so closes it). */
  readonly #ownsTls: boolean;
  readonly #resolver: AddressResolver;
  /** Exact routes' sets, by route key: one per configured route, kept until close(). */
  readonly #routeSets = new Map<string, EndpointSet>();
  /** Pattern routes' sets, one per what of the host they depend on (patternSetKey): swept when idle, at most MAX_SETS. */
  readonly #hostSets = new Map<string, EndpointSet>();
  readonly #closing = new Set<Promise<void>>();
  readonly #unsubscribe: () => void;
  readonly #sweeper: NodeJS.Timeout;

  constructor(options: PeerSessionsOptions) {
    const { config, holder, metrics, logger, now } = options;
    this.#config = config;
    this.#ownsTls = options.clientTls === undefined;
    this.#tls = options.clientTls ?? new ClientTlsContext(holder, { tls12: config.inbound.tls12 });
    this.#resolver = new AddressResolver(config.outbound.dns.servers, metrics);
    this.#context = {
      tls: this.#tls,
      trustDomain: config.trustDomain,
      connectTimeoutMs: Math.min(config.outbound.timeoutMs, 10_000),
      timeoutMs: config.outbound.timeoutMs,
      http2: config.outbound.http2,
      metrics,
      logger,
      ...(now === undefined ? {} : { now }),
    };
    this.#unsubscribe = this.#tls.onChange(() => {
      for (const set of this.#routeSets.values()) set.retire();
      for (const set of this.#hostSets.values()) set.retire();
    });
    const sweep = options.sweep ?? SET_SWEEP;
    this.#sweeper = setInterval(() => this.#sweep(sweep.idleMs), sweep.intervalMs);
    this.#sweeper.unref();
  }

  /** True once the first SVID is in (requests before it get 503 not ready). */
  get ready(): boolean {
    return this.#tls.current !== undefined;
  }

  /** The endpoints serving a call to `host` over `route`. */
  setFor(route: RouteConfig, host: string): EndpointSet {
    return this.#existing(route, host) ?? this.#create(route, host);
  }

  /**
   * As setFor, or the refusal when the route expects no ID of `host` (namespaceRefusal): that is known before any
   * DNS lookup or connection, and told as such, not later as the peer's identity. Checked only when a set is made.
   */
  setOrRefusal(route: RouteConfig, host: string): EndpointSet | MeshauthError {
    return (
      this.#existing(route, host) ??
      namespaceRefusal(route, host, this.#config.trustDomain) ??
      this.#create(route, host)
    );
  }

  /** The set of `route` for `host` if there is one. Per request: two reads, nothing allocated. */
  #existing(route: RouteConfig, host: string): EndpointSet | undefined {
    return route.pattern ? this.#hostSets.get(patternSetKey(route, host)) : this.#routeSets.get(route.host);
  }

  #create(route: RouteConfig, host: string): EndpointSet {
    const sets = route.pattern ? this.#hostSets : this.#routeSets;
    const key = route.pattern ? patternSetKey(route, host) : route.host;
    if (route.pattern && sets.size >= MAX_SETS) this.#sweep(0);
    const address = routeAddressFor(route, host);
    const set = new EndpointSet({
      routeKey: route.host,
      name: address.host,
      port: address.port,
      accepts: this.#accepts(route, host),
      context: this.#context,
      resolver: this.#resolver,
    });
    sets.set(key, set);
    this.#context.logger.debug(
      { direction: 'outbound', route: route.host, address: formatHostPort(address) },
      'endpoint set created',
    );
    return set;
  }

  /** Graceful close: streams in flight finish (bounded by `deadline`), then every session is destroyed. */
  async close(deadline: number): Promise<void> {
    this.#unsubscribe();
    clearInterval(this.#sweeper);
    if (this.#ownsTls) this.#tls.close();
    this.#resolver.cancel();
    const sets = [...this.#routeSets.values(), ...this.#hostSets.values()];
    this.#routeSets.clear();
    this.#hostSets.clear();
    await Promise.all([...sets.map((s) => s.close(deadline)), ...this.#closing]);
  }

  /** The expected-ID check for this host: exact IDs or `/sa/*` prefixes; any ID of the trust domain when none. */
  #accepts(route: RouteConfig, host: string): ((id: SpiffeId) => boolean) | undefined {
    if (route.ids.length === 0 && route.idPatterns.length === 0) return undefined;
    const expected = expectedIdsFor(route, host, this.#config.trustDomain);
    // A pattern the host cannot fill (no namespace label) leaves nothing expected: fail closed, never "any ID"
    // (setOrRefusal refuses such a call before this; setFor's callers may still ask).
    if (expected.exact.length === 0 && expected.prefixes.length === 0) return () => false;
    if (expected.prefixes.length === 0 && expected.exact.length === 1) {
      const only = expected.exact[0] as SpiffeId;
      return (id) => only.equals(id);
    }
    return (id) => idIsExpected(expected, id);
  }

  /**
   * Closes pattern routes' sets idle for `idleMs`; with 0 (the table is full), the least recently used idle sets until
   * EVICTED_AT_ONCE places are free, so that a stream of new names sorts the table once per that many names, not once
   * per name. A set with requests in flight or waiting for its first address is never closed.
   */
  #sweep(idleMs: number): void {
    const now = performance.now();
    const idle = [...this.#hostSets].filter(([, set]) => now - set.lastUsed >= idleMs && set.inflight === 0);
    if (idleMs === 0) idle.sort(([, a], [, b]) => a.lastUsed - b.lastUsed);
    for (const [key, set] of idle) {
      if (idleMs === 0 && this.#hostSets.size <= MAX_SETS - EVICTED_AT_ONCE) return;
      this.#hostSets.delete(key);
      this.#context.logger.debug(
        { direction: 'outbound', route: set.routeKey, name: set.servername },
        'idle endpoint set closed',
      );
      const closing = set.close(Date.now() + 1_000);
      this.#closing.add(closing);
      void closing.then(() => this.#closing.delete(closing));
    }
  }
}

/**
 * A pattern route's set for `host`, keyed by what of the host it depends on: the whole host when the address is
 * `{host}`, its namespace label when an expected ID names `{namespace}`, nothing otherwise. Keyed by host alone, a
 * route with a fixed address opened one connection to the same peer per name called, until the peer's per-identity
 * connection limit refused the next.
 */
function patternSetKey(route: RouteConfig, host: string): string {
  if (route.address.host === HOST_TEMPLATE) return `${route.host}|${host}`;
  for (const pattern of route.idPatterns) {
    if (pattern.includes(NAMESPACE_TEMPLATE)) return `${route.host}|{namespace}=${host.split('.')[1] ?? ''}`;
  }
  return route.host;
}
