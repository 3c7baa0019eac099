// SidecarConfig: the validated, defaulted and frozen sidecar settings. resolveSidecarConfig() fills
// defaults into an already validated file and parses values into their types (TrustDomain, SpiffeId, HostPort).
import { MAX_CLAIM_BYTES } from '../authn/claim-size.js';
import { MAX_TOKEN_LIFETIME_SECONDS } from '../authn/token-lifetime.js';
import { MeshauthError } from '../errors/index.js';
import { SpiffeId, TrustDomain } from '../identity/index.js';
import { DEFAULT_MAX_PEER_ID_LABELS } from '../telemetry/peer-id-labels.js';
import { parseDuration } from './duration.js';
import { formatHostPort, type HostPort, parseHostPort, samePlace } from './host-port.js';
import { envOrigin } from './key-path.js';
import { isRouteIdPattern, parseEgressEntry, parseRouteAddress, type RouteAddress } from './route-match.js';
import type { EndUserFile, ExternalFile, InboundLimitsFile, SidecarFile } from './sidecar-schema.js';

/** Listener defaults; the outbound listener is loopback-only whatever the file says. */
export const SIDECAR_DEFAULTS = Object.freeze({
  inboundListen: '0.0.0.0:15006',
  inboundApp: '127.0.0.1:8080',
  outboundListen: '127.0.0.1:15001',
  adminListen: '0.0.0.0:15020',
  appTimeout: '30s',
  outboundTimeout: '30s',
  outboundHttp2: true,
  drainTimeout: '20s',
  tls12: false,
});

/**
 * `outbound.limits` defaults. An idle keep-alive connection of the app costs the sidecar 8–16 KiB, and the inbound at
 * its own cap already holds about 210 MiB of the injected 256 MiB: 1,024 connections fit beside it (docs/outbound.md).
 */
export const OUTBOUND_LIMIT_DEFAULTS: OutboundLimitSettings = Object.freeze({ maxConnections: 1024 });

export interface OutboundLimitSettings {
  /** Open connections from the app on the outbound listener; past it a connection is closed at accept. */
  readonly maxConnections: number;
}

/** `inbound.limits` defaults (SECURITY.md): bounds that keep one peer or a flood from exhausting the sidecar. */
export const INBOUND_LIMIT_DEFAULTS: InboundLimitSettings = Object.freeze({
  maxConnections: 4096,
  maxHandshakes: 256,
  handshakeTimeoutMs: 5_000,
  maxConnectionsPerPeer: 256,
  maxConnectionsPerSource: undefined,
  maxConcurrentStreams: 100,
  streamIdleTimeoutMs: 30_000,
  sessionIdleTimeoutMs: 75_000,
  appConnections: 128,
  maxHeaderBytes: 16 * 1024,
  maxPeerIdLabels: DEFAULT_MAX_PEER_ID_LABELS,
});

export interface InboundLimitSettings {
  /** Concurrent TLS connections on the inbound (and the external) listener. */
  readonly maxConnections: number;
  /** Connections still in the TLS handshake. */
  readonly maxHandshakes: number;
  /** Time a connection has to finish its TLS handshake. */
  readonly handshakeTimeoutMs: number;
  /** Concurrent connections of one peer SPIFFE ID. */
  readonly maxConnectionsPerPeer: number;
  /**
   * External listener: concurrent connections from one client address (an IPv6 client by its /64); undefined: a
   * quarter of maxConnections. Raise it behind a load balancer that hides client addresses (SNAT).
   */
  readonly maxConnectionsPerSource: number | undefined;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per session. */
  readonly maxConcurrentStreams: number;
  /** A stream with no frame in either direction for this long is reset. */
  readonly streamIdleTimeoutMs: number;
  /** A session (or HTTP/1.1 connection) with no stream for this long is closed. */
  readonly sessionIdleTimeoutMs: number;
  /** Connections to the local app, at most. */
  readonly appConnections: number;
  /** Request header block limit, HTTP/1.1 and HTTP/2 alike (431 past it). */
  readonly maxHeaderBytes: number;
  /** Distinct peer SPIFFE IDs with a `peer_id` label value of their own, every direction; the rest are `other`. */
  readonly maxPeerIdLabels: number;
}

/** `admin.appProbes` entry: where the app container's own probe is answered, on loopback. */
export interface AppProbeTarget {
  readonly port: number;
  readonly path: string;
}

export type AppProbeKind = 'livez' | 'readyz' | 'startupz';

export interface EndUserSettings {
  readonly required: boolean;
  readonly issuers: readonly {
    readonly issuer: string;
    readonly audiences: readonly string[];
    readonly jwksUri?: string;
    readonly caFile?: string;
    readonly algorithms: readonly string[];
    readonly typ?: string;
  }[];
  readonly vouchers: readonly string[];
  readonly claims: readonly string[];
  /** Also pass the raw bearer token to the app (off by default: the token stops at the first sidecar). */
  readonly forwardOriginalToken: boolean;
  /** A user whose claims (JSON) are larger is refused (`claims_too_large`) rather than vouched for. */
  readonly maxClaimBytes: number;
  /** A token whose `exp` lies further ahead than this many seconds (plus the clock skew) is refused (`lifetime`). */
  readonly maxTokenLifetimeSeconds: number;
}

/** `inbound.external`: the public bearer-token listener (server TLS only). */
export interface ExternalListenerSettings {
  readonly listen: HostPort;
  /** PEM certificate chain file (a server certificate for the host name clients use, not the SVID). */
  readonly cert: string;
  /** PEM private key file. */
  readonly key: string;
}

export interface RouteConfig {
  /** The key as written, lower case: a host name apps call (`orders.shop`) or a pattern (`*.shop`). */
  readonly host: string;
  /** True when the key has `*` labels (each stands for exactly one DNS label). */
  readonly pattern: boolean;
  /** The peer sidecar's inbound listener; host may be a DNS name (every A/AAAA record an endpoint) or `{host}`. */
  readonly address: RouteAddress;
  /** SPIFFE IDs the peer may present; with idPatterns empty too, any ID of the trust domain. */
  readonly ids: readonly SpiffeId[];
  /** Expected-ID patterns as written (`spiffe://td/ns/{namespace}/sa/*`): see route-match.ts expectedIdsFor. */
  readonly idPatterns: readonly string[];
}

/** `outbound.tcp` entry: a loopback port whose connections are tunnelled over mTLS (ALPN meshauth-tcp/2). */
export interface TcpRouteConfig {
  readonly listen: HostPort;
  readonly address: RouteAddress;
  readonly ids: readonly SpiffeId[];
}

export interface SidecarConfig {
  /** Where the settings came from (file path or `environment`), for messages. */
  readonly source: string;
  /** Key path → the MESHAUTH_* variable that set it over `source`, for messages about a value checked later. */
  readonly variables: ReadonlyMap<string, string>;
  readonly trustDomain: TrustDomain;
  readonly ca: { readonly url: string; readonly bundle: string; readonly token: string };
  readonly inbound: {
    readonly listen: HostPort;
    readonly app: HostPort;
    readonly policy: string | undefined;
    readonly tls12: boolean;
    readonly appTimeoutMs: number;
    readonly endUser: EndUserSettings | undefined;
    /** Set only together with endUser (the schema refuses it alone). */
    readonly external: ExternalListenerSettings | undefined;
    readonly limits: InboundLimitSettings;
    /** Tunnel connections (ALPN meshauth-tcp/2 or /1) are piped to this app port, after the L4 policy check. */
    readonly tcp: { readonly app: HostPort } | undefined;
    /**
     * Peers whose forwarding headers (X-Forwarded-*, Forwarded, X-Real-IP, …) reach the app; every other peer's
     * are dropped. Default: `endUser.vouchers` (the gateway, which sets them for the services behind it).
     */
    readonly trustForwardedFrom: ReadonlySet<string>;
    /**
     * The app ports /readyz needs to accept a connection: `app`, unless the sidecar is TCP-only (`tcp` set and `app`
     * left out, so `app` is only its default and nothing may listen there), and `tcp.app`.
     */
    readonly readinessApps: readonly HostPort[];
  };
  readonly outbound: {
    readonly listen: HostPort;
    /** Keyed by the lower-case key (host name or pattern); match with route-match.ts RouteTable. */
    readonly routes: ReadonlyMap<string, RouteConfig>;
    /** Hosts (exact or `*.domain`) and ports the CONNECT tunnel may reach; never loopback. */
    readonly egress: readonly HostPort[];
    /** DNS servers for route addresses that are names; empty: the system resolver. */
    readonly dns: { readonly servers: readonly HostPort[] };
    /** Keyed by the listen address as written (`127.0.0.1:5432`). */
    readonly tcp: ReadonlyMap<string, TcpRouteConfig>;
    readonly timeoutMs: number;
    /** HTTP/2 to peer sidecars (one node:http2 session per peer); false = HTTP/1.1 keep-alive pools. */
    readonly http2: boolean;
    /** Bounds on what the local app may hold at the outbound listener (OUTBOUND_LIMIT_DEFAULTS). */
    readonly limits: OutboundLimitSettings;
  };
  readonly admin: {
    readonly listen: HostPort;
    /** Container name → the app's own probes, forwarded by `/app-health/<container>/<kind>`. */
    readonly appProbes: ReadonlyMap<string, Readonly<Partial<Record<AppProbeKind, AppProbeTarget>>>>;
  };
  readonly drainTimeoutMs: number;
}

/** Fills defaults and converts a validated file into a deeply frozen SidecarConfig. */
export function resolveSidecarConfig(
  file: SidecarFile,
  source: string,
  variables: ReadonlyMap<string, string> = new Map(),
): SidecarConfig {
  const inbound = file.inbound ?? {};
  const outbound = file.outbound ?? {};
  const routes = new Map<string, RouteConfig>();
  for (const [host, route] of Object.entries(outbound.routes ?? {})) {
    const name = host.toLowerCase();
    const written = route.ids ?? [];
    routes.set(
      name,
      Object.freeze({
        host: name,
        pattern: name.includes('*'),
        address: routeAddress(route.address),
        ids: Object.freeze(written.filter((id) => !isRouteIdPattern(id)).map((id) => SpiffeId.parse(id))),
        idPatterns: Object.freeze(written.filter((id) => isRouteIdPattern(id))),
      }),
    );
  }
  const tcp = new Map<string, TcpRouteConfig>();
  for (const [listen, route] of Object.entries(outbound.tcp ?? {})) {
    tcp.set(listen, {
      listen: hp(listen),
      address: routeAddress(route.address),
      ids: route.ids.map((id) => SpiffeId.parse(id)),
    });
  }
  const appProbes = new Map<string, Partial<Record<AppProbeKind, AppProbeTarget>>>();
  for (const [container, probes] of Object.entries(file.admin?.appProbes ?? {})) {
    const entry: Partial<Record<AppProbeKind, AppProbeTarget>> = {};
    for (const kind of ['livez', 'readyz', 'startupz'] as const) {
      const target = probes[kind];
      if (target !== undefined) entry[kind] = { port: target.port, path: target.path };
    }
    appProbes.set(container, entry);
  }
  const inboundApp = hp(inbound.app ?? SIDECAR_DEFAULTS.inboundApp);
  const tcpApp = inbound.tcp === undefined ? undefined : hp(inbound.tcp.app);
  if (tcpApp !== undefined) {
    // A tunnel hands a peer raw bytes: into the HTTP app they would skip header stripping and L7 policy, into one of
    // the sidecar's own listeners they would act as this workload.
    const own: Array<[string, HostPort]> = [
      // The default inbound.app (unused by a TCP-only workload) is no clash; one that is set is.
      ...(inbound.app === undefined ? [] : [['inbound.app', inboundApp] as [string, HostPort]]),
      ['inbound.listen', hp(inbound.listen ?? SIDECAR_DEFAULTS.inboundListen)],
      ['outbound.listen', hp(outbound.listen ?? SIDECAR_DEFAULTS.outboundListen)],
      ['admin.listen', hp(file.admin?.listen ?? SIDECAR_DEFAULTS.adminListen)],
      ...(inbound.external === undefined
        ? []
        : [['inbound.external.listen', hp(inbound.external.listen)] as [string, HostPort]]),
      ...[...tcp.keys()].map((listen) => [`outbound.tcp["${listen}"]`, hp(listen)] as [string, HostPort]),
    ];
    const clash = own.find(([, place]) => samePlace(place, tcpApp));
    if (clash !== undefined) {
      throw new MeshauthError(
        'MESHAUTH_ERR_CONFIG_INVALID',
        `${source}: inbound.tcp.app${envOrigin('inbound.tcp.app', variables)}: expected a TCP service of its own, not ${clash[0]}${envOrigin(clash[0], variables)} (${formatHostPort(clash[1])}): a tunnel there would bypass the HTTP path or act as this workload`,
        { reason: 'config_tcp_app' },
      );
    }
  }
  checkListenersApart(source, variables, [
    ['inbound.listen', hp(inbound.listen ?? SIDECAR_DEFAULTS.inboundListen)],
    ['outbound.listen', hp(outbound.listen ?? SIDECAR_DEFAULTS.outboundListen)],
    ['admin.listen', hp(file.admin?.listen ?? SIDECAR_DEFAULTS.adminListen)],
    ...(inbound.external === undefined
      ? []
      : [['inbound.external.listen', hp(inbound.external.listen)] as [string, HostPort]]),
    ...[...tcp.entries()].map(([listen, route]) => [`outbound.tcp["${listen}"]`, route.listen] as [string, HostPort]),
  ]);
  return deepFreeze({
    source,
    variables: new Map(variables),
    trustDomain: TrustDomain.parse(file.trustDomain),
    ca: { url: file.ca.url, bundle: file.ca.bundle, token: file.ca.token },
    inbound: {
      listen: hp(inbound.listen ?? SIDECAR_DEFAULTS.inboundListen),
      app: inboundApp,
      policy: inbound.policy,
      tls12: inbound.tls12 ?? SIDECAR_DEFAULTS.tls12,
      appTimeoutMs: parseDuration(inbound.appTimeout ?? SIDECAR_DEFAULTS.appTimeout),
      endUser: inbound.endUser === undefined ? undefined : resolveEndUser(inbound.endUser),
      external: inbound.external === undefined ? undefined : resolveExternal(inbound.external),
      limits: resolveLimits(inbound.limits ?? {}),
      tcp: tcpApp === undefined ? undefined : { app: tcpApp },
      trustForwardedFrom: new Set(inbound.trustForwardedFrom ?? inbound.endUser?.vouchers ?? []),
      readinessApps: [
        ...(tcpApp !== undefined && inbound.app === undefined ? [] : [inboundApp]),
        ...(tcpApp === undefined ? [] : [tcpApp]),
      ],
    },
    outbound: {
      listen: hp(outbound.listen ?? SIDECAR_DEFAULTS.outboundListen),
      routes,
      egress: (outbound.egress ?? []).map(egressEntry),
      dns: { servers: (outbound.dns?.servers ?? []).map(hp) },
      tcp,
      timeoutMs: parseDuration(outbound.timeout ?? SIDECAR_DEFAULTS.outboundTimeout),
      http2: outbound.http2 ?? SIDECAR_DEFAULTS.outboundHttp2,
      limits: { maxConnections: outbound.limits?.maxConnections ?? OUTBOUND_LIMIT_DEFAULTS.maxConnections },
    },
    admin: { listen: hp(file.admin?.listen ?? SIDECAR_DEFAULTS.adminListen), appProbes },
    drainTimeoutMs: parseDuration(file.drainTimeout ?? SIDECAR_DEFAULTS.drainTimeout),
  });
}

/**
 * Two of the sidecar's own listeners on one address: the config used to pass, and the start then failed on the
 * second bind with Node's raw `listen EADDRINUSE` (exit 1, no code, no key), after the first listeners were up.
 * Refused here, naming both keys. Port 0 (any free port, tests) never clashes.
 */
function checkListenersApart(
  source: string,
  variables: ReadonlyMap<string, string>,
  listeners: readonly [string, HostPort][],
): void {
  for (const [index, [key, place]] of listeners.entries()) {
    if (place.port === 0) continue;
    const earlier = listeners.slice(0, index).find(([, other]) => other.port !== 0 && samePlace(other, place));
    if (earlier === undefined) continue;
    throw new MeshauthError(
      'MESHAUTH_ERR_CONFIG_INVALID',
      `${source}: ${key}${envOrigin(key, variables)}: expected an address of its own, not the one of ${earlier[0]}${envOrigin(earlier[0], variables)} (${formatHostPort(earlier[1])}): two listeners cannot bind one port`,
      { reason: 'config_listen_clash', detail: { file: source, key } },
    );
  }
}

/** `inbound.endUser` as written (a sidecar's file or inject.yaml's mesh-wide one) with its defaults filled in. */
export function resolveEndUser(file: EndUserFile): EndUserSettings {
  return {
    required: file.required ?? false,
    issuers: file.issuers.map((i) => ({
      issuer: i.issuer,
      audiences: [...i.audiences],
      algorithms: [...i.algorithms],
      ...(i.jwksUri === undefined ? {} : { jwksUri: i.jwksUri }),
      ...(i.caFile === undefined ? {} : { caFile: i.caFile }),
      ...(i.typ === undefined ? {} : { typ: i.typ }),
    })),
    vouchers: [...(file.vouchers ?? [])],
    claims: [...(file.claims ?? [])],
    forwardOriginalToken: file.forwardOriginalToken ?? false,
    maxClaimBytes: file.maxClaimBytes ?? MAX_CLAIM_BYTES,
    maxTokenLifetimeSeconds:
      file.maxTokenLifetime === undefined
        ? MAX_TOKEN_LIFETIME_SECONDS
        : Math.ceil(parseDuration(file.maxTokenLifetime) / 1000),
  };
}

function resolveExternal(file: ExternalFile): ExternalListenerSettings {
  return { listen: hp(file.listen), cert: file.cert, key: file.key };
}

function resolveLimits(file: InboundLimitsFile): InboundLimitSettings {
  const d = INBOUND_LIMIT_DEFAULTS;
  const ms = (text: string | undefined, fallback: number) => (text === undefined ? fallback : parseDuration(text));
  return {
    maxConnections: file.maxConnections ?? d.maxConnections,
    maxHandshakes: file.maxHandshakes ?? d.maxHandshakes,
    handshakeTimeoutMs: ms(file.handshakeTimeout, d.handshakeTimeoutMs),
    maxConnectionsPerPeer: file.maxConnectionsPerPeer ?? d.maxConnectionsPerPeer,
    maxConnectionsPerSource: file.maxConnectionsPerSource,
    maxConcurrentStreams: file.maxConcurrentStreams ?? d.maxConcurrentStreams,
    streamIdleTimeoutMs: ms(file.streamIdleTimeout, d.streamIdleTimeoutMs),
    sessionIdleTimeoutMs: ms(file.sessionIdleTimeout, d.sessionIdleTimeoutMs),
    appConnections: file.appConnections ?? d.appConnections,
    maxHeaderBytes: file.maxHeaderBytes ?? d.maxHeaderBytes,
    maxPeerIdLabels: file.maxPeerIdLabels ?? d.maxPeerIdLabels,
  };
}

function routeAddress(text: string): RouteAddress {
  const value = parseRouteAddress(text);
  if (value === undefined) throw new TypeError(`unvalidated route address ${text}`); // the schema checked it already
  return value;
}

function egressEntry(text: string): HostPort {
  const value = parseEgressEntry(text);
  if (value === undefined) throw new TypeError(`unvalidated egress entry ${text}`); // the schema checked it already
  return value;
}

function hp(text: string): HostPort {
  const value = parseHostPort(text);
  if (value === undefined) throw new TypeError(`unvalidated host:port ${text}`); // the schema checked it already
  return value;
}

function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return value;
  if (value instanceof Map) {
    for (const v of value.values()) deepFreeze(v);
    // A frozen Map can still be mutated through set(); block it so the config really is read-only.
    const map = value as Map<unknown, unknown>;
    map.set = readOnly;
    map.delete = readOnly;
    map.clear = readOnly;
  } else if (!(value instanceof TrustDomain) && !(value instanceof SpiffeId)) {
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return Object.freeze(value);
}

function readOnly(): never {
  throw new TypeError('SidecarConfig is read-only');
}
