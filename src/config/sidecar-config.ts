// SidecarConfig: the validated, defaulted and frozen sidecar settings (SPEC §7). resolveSidecarConfig() fills
// defaults into an already validated file and parses values into their types (TrustDomain, SpiffeId, HostPort).
import { SpiffeId, TrustDomain } from '../identity/index.js';
import { parseDuration } from './duration.js';
import { type HostPort, parseHostPort } from './host-port.js';
import type { EndUserFile, ExternalFile, SidecarFile } from './sidecar-schema.js';

/** SPEC §7 listener defaults; the outbound listener is loopback-only whatever the file says. */
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

export interface EndUserSettings {
  readonly required: boolean;
  readonly issuers: readonly {
    readonly issuer: string;
    readonly audiences: readonly string[];
    readonly jwksUri?: string;
    readonly algorithms: readonly string[];
    readonly typ?: string;
  }[];
  readonly vouchers: readonly string[];
  readonly claims: readonly string[];
  /** Also pass the raw bearer token to the app (off by default: the token stops at the first sidecar, SPEC §5). */
  readonly forwardOriginalToken: boolean;
}

/** Issue 5 `inbound.external`: the public bearer-token listener (server TLS only). */
export interface ExternalListenerSettings {
  readonly listen: HostPort;
  /** PEM certificate chain file (a server certificate for the host name clients use, not the SVID). */
  readonly cert: string;
  /** PEM private key file. */
  readonly key: string;
}

export interface RouteConfig {
  /** The host name apps call (`orders.shop`), lower case, no port. */
  readonly host: string;
  /** The peer sidecar's inbound listener. */
  readonly address: HostPort;
  /** SPIFFE IDs the peer may present; empty means any ID of the trust domain. */
  readonly ids: readonly SpiffeId[];
}

export interface SidecarConfig {
  /** Where the settings came from (file path or `environment`), for messages. */
  readonly source: string;
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
  };
  readonly outbound: {
    readonly listen: HostPort;
    /** Keyed by lower-case host name. */
    readonly routes: ReadonlyMap<string, RouteConfig>;
    /** Host names (exact or `*.domain`) the CONNECT tunnel may reach. */
    readonly egress: readonly string[];
    readonly timeoutMs: number;
    /** HTTP/2 to peer sidecars (SPEC §7, one node:http2 session per peer); false = HTTP/1.1 keep-alive pools. */
    readonly http2: boolean;
  };
  readonly admin: { readonly listen: HostPort };
  readonly drainTimeoutMs: number;
}

/** Fills defaults and converts a validated file into a deeply frozen SidecarConfig. */
export function resolveSidecarConfig(file: SidecarFile, source: string): SidecarConfig {
  const inbound = file.inbound ?? {};
  const outbound = file.outbound ?? {};
  const routes = new Map<string, RouteConfig>();
  for (const [host, route] of Object.entries(outbound.routes ?? {})) {
    const name = host.toLowerCase();
    routes.set(
      name,
      Object.freeze({
        host: name,
        address: hp(route.address),
        ids: Object.freeze((route.ids ?? []).map((id) => SpiffeId.parse(id))),
      }),
    );
  }
  return deepFreeze({
    source,
    trustDomain: TrustDomain.parse(file.trustDomain),
    ca: { url: file.ca.url, bundle: file.ca.bundle, token: file.ca.token },
    inbound: {
      listen: hp(inbound.listen ?? SIDECAR_DEFAULTS.inboundListen),
      app: hp(inbound.app ?? SIDECAR_DEFAULTS.inboundApp),
      policy: inbound.policy,
      tls12: inbound.tls12 ?? SIDECAR_DEFAULTS.tls12,
      appTimeoutMs: parseDuration(inbound.appTimeout ?? SIDECAR_DEFAULTS.appTimeout),
      endUser: inbound.endUser === undefined ? undefined : resolveEndUser(inbound.endUser),
      external: inbound.external === undefined ? undefined : resolveExternal(inbound.external),
    },
    outbound: {
      listen: hp(outbound.listen ?? SIDECAR_DEFAULTS.outboundListen),
      routes,
      egress: [...(outbound.egress ?? [])],
      timeoutMs: parseDuration(outbound.timeout ?? SIDECAR_DEFAULTS.outboundTimeout),
      http2: outbound.http2 ?? SIDECAR_DEFAULTS.outboundHttp2,
    },
    admin: { listen: hp(file.admin?.listen ?? SIDECAR_DEFAULTS.adminListen) },
    drainTimeoutMs: parseDuration(file.drainTimeout ?? SIDECAR_DEFAULTS.drainTimeout),
  });
}

function resolveEndUser(file: EndUserFile): EndUserSettings {
  return {
    required: file.required ?? false,
    issuers: file.issuers.map((i) => ({
      issuer: i.issuer,
      audiences: [...i.audiences],
      algorithms: [...i.algorithms],
      ...(i.jwksUri === undefined ? {} : { jwksUri: i.jwksUri }),
      ...(i.typ === undefined ? {} : { typ: i.typ }),
    })),
    vouchers: [...(file.vouchers ?? [])],
    claims: [...(file.claims ?? [])],
    forwardOriginalToken: file.forwardOriginalToken ?? false,
  };
}

function resolveExternal(file: ExternalFile): ExternalListenerSettings {
  return { listen: hp(file.listen), cert: file.cert, key: file.key };
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
