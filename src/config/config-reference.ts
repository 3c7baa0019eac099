// The configuration reference in the README: every key of the sidecar's zod schema (walked through its JSON
// Schema), with its type, default, environment variable and meaning. A test fails when the schema has a key this
// table does not describe, or the README block is stale (`npm run docs` regenerates it).
import { z } from 'zod';
import { MAX_CLAIM_BYTES } from '../authn/claim-size.js';
import { formatDuration } from './duration.js';
import { SIDECAR_ENV } from './env-names.js';
import { INBOUND_LIMIT_DEFAULTS, OUTBOUND_LIMIT_DEFAULTS, SIDECAR_DEFAULTS } from './sidecar-config.js';
import { sidecarSchema } from './sidecar-schema.js';

/** Meaning of each key path; `[]` marks list items, `<host>` a routes map key. */
export const CONFIG_DOCS: Readonly<Record<string, string>> = {
  trustDomain: 'Trust domain of this workload and its peers, e.g. `example.org`.',
  'ca.url':
    '`https://` URL of `meshauth ca serve` (an `http:` URL is refused at start; verified by the bundle and the ID `spiffe://<td>/meshauth/ca`, never by host name).',
  'ca.bundle': 'PEM file with the trust bundle (every root): the anchor for the CA connection and for peers.',
  'ca.token':
    'File holding the bootstrap credential (join token or projected service-account token); read afresh at each use.',
  'inbound.listen':
    'mTLS listener for peers (`host:port`; `[::]:PORT` is every address of both families, IPv4 only on a host without IPv6; `0.0.0.0` is IPv4 only).',
  'inbound.app': 'Where the local app listens (plain HTTP).',
  'inbound.policy':
    'Policy file (docs/policy.md); without it every authenticated peer of the trust domain is allowed. Reloaded on change.',
  'inbound.tls12':
    'Also allow TLS 1.2 (ECDHE + AEAD suites only) on the inbound and external listeners and on outbound connections to peers; TLS 1.3 only otherwise.',
  'inbound.appTimeout': 'Time the app has to send response headers before the caller gets 504.',
  'inbound.endUser.required': 'Refuse requests without an end user (401 `Bearer`).',
  'inbound.endUser.issuers[].issuer': 'Exact `iss` of the issuer; OIDC discovery base when `jwksUri` is absent.',
  'inbound.endUser.issuers[].audiences': 'Accepted `aud` values (at least one).',
  'inbound.endUser.issuers[].jwksUri':
    'JWKS URL (https, or http to loopback), or file:///absolute/path.json re-read when it changes; default from discovery.',
  'inbound.endUser.issuers[].caFile':
    "PEM file of the CAs trusted (instead of the system roots) for https to the issuer's discovery and JWKS.",
  'inbound.endUser.issuers[].algorithms': 'Allowed JWS algorithms (asymmetric only; `none` and HS* are refused).',
  'inbound.endUser.issuers[].typ': 'Required JWT `typ` header, e.g. `at+jwt`.',
  'inbound.trustForwardedFrom':
    "SPIFFE IDs of peers whose forwarding headers (`X-Forwarded-*`, `Forwarded`, `X-Real-IP`, the CDN client-address headers) reach the app; every other peer's are dropped, as a mesh workload cannot speak for a client it did not receive. Default: `inbound.endUser.vouchers` (the edge gateway sets `X-Forwarded-For`, `-Host` and `-Proto` for the services behind it).",
  'inbound.endUser.vouchers':
    'SPIFFE IDs allowed to vouch for end users in passports (the sidecars that validate external tokens). A sidecar that only receives passports still names at least one issuer in `issuers`.',
  'inbound.endUser.claims': 'Claims passed to the app in `x-meshauth-user` next to `sub` and `iss`.',
  'inbound.endUser.forwardOriginalToken':
    'Also pass the raw `Authorization` header to the app (off: the token stops at the first sidecar).',
  'inbound.endUser.maxClaimBytes':
    "Largest end-user claims (bytes of JSON) this sidecar vouches for from a bearer token, 256–8192; a larger user gets 401 `claims_too_large`, never truncated. They reach the app twice, base64url (about 2.7 bytes of headers per byte): past 4096, raise the app's header limit (Node's default is 16 KiB) and the next sidecars' `inbound.limits.maxHeaderBytes`; with RSA-2048 SVIDs (larger passports) keep it near 3000 or raise the app's limit.",
  'inbound.endUser.maxTokenLifetime':
    "How far ahead an end-user token's `exp` may lie (a duration such as `24h` or `7d`); a token expiring later gets 401 `lifetime` instead of being vouched for until then. Raise it only for an issuer that hands out longer tokens.",
  'inbound.external.listen':
    'Optional public listener (server TLS, no client certificate) for API clients with bearer tokens.',
  'inbound.external.cert':
    'PEM certificate chain of the public listener (a normal server certificate clients verify by name); read at start only: restart the sidecar after renewing it.',
  'inbound.external.key': 'PEM private key of the public listener.',
  'outbound.listen': "Listener for the app's outgoing calls (`HTTP_PROXY`); loopback only.",
  'outbound.routes.<host>.address':
    "The peer sidecar's inbound listener for calls to `<host>`: `host:port` (a DNS name's every A/AAAA record is an endpoint, balanced per request) or `{host}:port` (the name the app called).",
  'outbound.routes.<host>.ids':
    "SPIFFE IDs the peer may have (default: any ID of the trust domain); exactly one to carry passports. Patterns ending in `/sa/*` (any workload of that namespace — weaker than an exact ID) and `{namespace}` (the called host's second label) are allowed.",
  'outbound.egress':
    'Hosts (exact or `*.domain`, optionally `:port`, default port 443) the app may reach with `CONNECT` tunnels; none by default; never loopback.',
  'outbound.dns.servers':
    'DNS servers (`host:port`) for route addresses that are names; default: the system resolver (what a pod uses).',
  'outbound.tcp.<listen>.address':
    'Peer sidecar for TCP connections accepted on the loopback `<listen>` address (mTLS, ALPN `meshauth-tcp/2`, framed: a cut is never a clean end).',
  'outbound.tcp.<listen>.ids': 'SPIFFE IDs the TCP peer may have (at least one).',
  'inbound.limits.maxConnections': 'Concurrent TLS connections on the inbound and external listeners.',
  'inbound.limits.maxHandshakes': 'Connections still in the TLS handshake, at most.',
  'inbound.limits.handshakeTimeout': 'Time a connection has to complete its TLS handshake.',
  'inbound.limits.maxConnectionsPerPeer': 'Concurrent connections of one peer SPIFFE ID.',
  'inbound.limits.maxConnectionsPerSource':
    'External listener: concurrent connections from one client address (IPv6: its /64); default a quarter of maxConnections. Raise it behind a load balancer that hides client addresses.',
  'inbound.limits.maxConcurrentStreams': 'HTTP/2 concurrent streams per session (SETTINGS_MAX_CONCURRENT_STREAMS).',
  'inbound.limits.streamIdleTimeout': 'A request stream without any frame for this long is reset.',
  'inbound.limits.sessionIdleTimeout': 'A connection without a request for this long is closed.',
  'inbound.limits.appConnections': 'Connections to the local app, at most (requests queue beyond).',
  'inbound.limits.maxHeaderBytes': 'Request header block limit, HTTP/1.1 and HTTP/2 (431 past it).',
  'inbound.limits.maxPeerIdLabels':
    'Distinct peer SPIFFE IDs given a `peer_id` value of their own in `meshauth_requests_total` and `meshauth_tcp_connections_total` (all directions, first come); later peers are counted under `peer_id="other"`, with one `peer_id_labels_full` warn line; 0: every peer is `other`. Bounds the series (memory and scrape size) when many workloads call this one.',
  'inbound.tcp.app':
    'Local TCP service that tunnel connections (ALPN `meshauth-tcp/2`, or `/1` from older peers) are piped to, after the L4 policy check.',
  'admin.appProbes.<container>.livez.port': "Loopback port of the app container's liveness probe.",
  'admin.appProbes.<container>.livez.path': "Path of the app container's liveness probe.",
  'admin.appProbes.<container>.readyz.port': "Loopback port of the app container's readiness probe.",
  'admin.appProbes.<container>.readyz.path': "Path of the app container's readiness probe.",
  'admin.appProbes.<container>.startupz.port': "Loopback port of the app container's startup probe.",
  'admin.appProbes.<container>.startupz.path': "Path of the app container's startup probe.",
  'outbound.timeout':
    "Time a peer has to send response headers before the app gets 504; a request that has to wait for the route name's first DNS answer, a connection or a retry counts it from its arrival. After the head, the longest silence of a response or an upload.",
  'outbound.http2': 'HTTP/2 between sidecars (one multiplexed connection per peer); `false` for HTTP/1.1 keep-alive.',
  'outbound.limits.maxConnections':
    'Open connections from the app on the outbound listener (egress tunnels included); past it a connection is closed at accept. Lowered to fit the open-file limit beside the inbound.',
  'admin.listen':
    'Admin listener: `/livez` (alias `/healthz`), `/startupz`, `/readyz`, `/app-health/<container>/<kind>`, `/metrics`.',
  drainTimeout: 'On SIGTERM, how long in-flight requests may take before connections are closed.',
};

const DEFAULTS: Readonly<Record<string, string>> = {
  'inbound.listen': SIDECAR_DEFAULTS.inboundListen,
  'inbound.app': SIDECAR_DEFAULTS.inboundApp,
  'inbound.tls12': String(SIDECAR_DEFAULTS.tls12),
  'inbound.appTimeout': SIDECAR_DEFAULTS.appTimeout,
  'inbound.endUser.required': 'false',
  'inbound.endUser.forwardOriginalToken': 'false',
  'inbound.endUser.maxClaimBytes': String(MAX_CLAIM_BYTES),
  'inbound.endUser.maxTokenLifetime': '24h',
  'outbound.listen': SIDECAR_DEFAULTS.outboundListen,
  'outbound.timeout': SIDECAR_DEFAULTS.outboundTimeout,
  'outbound.http2': String(SIDECAR_DEFAULTS.outboundHttp2),
  'outbound.limits.maxConnections': String(OUTBOUND_LIMIT_DEFAULTS.maxConnections),
  'admin.listen': SIDECAR_DEFAULTS.adminListen,
  drainTimeout: SIDECAR_DEFAULTS.drainTimeout,
  'inbound.limits.maxConnections': String(INBOUND_LIMIT_DEFAULTS.maxConnections),
  'inbound.limits.maxHandshakes': String(INBOUND_LIMIT_DEFAULTS.maxHandshakes),
  'inbound.limits.handshakeTimeout': formatDuration(INBOUND_LIMIT_DEFAULTS.handshakeTimeoutMs),
  'inbound.limits.maxConnectionsPerPeer': String(INBOUND_LIMIT_DEFAULTS.maxConnectionsPerPeer),
  'inbound.limits.maxConnectionsPerSource': 'maxConnections / 4',
  'inbound.limits.maxConcurrentStreams': String(INBOUND_LIMIT_DEFAULTS.maxConcurrentStreams),
  'inbound.limits.streamIdleTimeout': formatDuration(INBOUND_LIMIT_DEFAULTS.streamIdleTimeoutMs),
  'inbound.limits.sessionIdleTimeout': formatDuration(INBOUND_LIMIT_DEFAULTS.sessionIdleTimeoutMs),
  'inbound.limits.appConnections': String(INBOUND_LIMIT_DEFAULTS.appConnections),
  'inbound.limits.maxHeaderBytes': String(INBOUND_LIMIT_DEFAULTS.maxHeaderBytes),
  'inbound.limits.maxPeerIdLabels': String(INBOUND_LIMIT_DEFAULTS.maxPeerIdLabels),
};

/** How the reference names the keys of each map-valued key. */
const MAP_KEY_NAMES: Readonly<Record<string, string>> = {
  'outbound.routes': '<host>',
  'outbound.tcp': '<listen>',
  'admin.appProbes': '<container>',
};

export interface ConfigKey {
  readonly path: string;
  readonly type: string;
  readonly required: boolean;
  /**
   * For a key that must be set whenever an optional object above it is (`inbound.endUser.issuers[].issuer` with
   * `inbound.endUser`): that object's path. Undefined for keys required outright and for optional keys.
   */
  readonly requiredWith?: string;
}

interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  additionalProperties?: JsonSchema | boolean;
}

/** Every leaf key of the sidecar schema, in schema order. */
export function configKeys(): ConfigKey[] {
  const keys: ConfigKey[] = [];
  // `optionalFrom`: the nearest optional object (or map entry) above, from which every level down to here is
  // required; '' while every level from the top is required; undefined once an optional level breaks the chain.
  const walk = (schema: JsonSchema, path: string, optionalFrom: string | undefined) => {
    if (schema.type === 'object' && schema.properties !== undefined) {
      for (const [name, child] of Object.entries(schema.properties)) {
        const childPath = path === '' ? name : `${path}.${name}`;
        const requiredHere = (schema.required ?? []).includes(name);
        walk(child, childPath, requiredHere ? optionalFrom : childPath);
      }
      return;
    }
    if (schema.type === 'object' && typeof schema.additionalProperties === 'object') {
      const entry = `${path}.${MAP_KEY_NAMES[path] ?? '<key>'}`;
      walk(schema.additionalProperties, entry, entry);
      return;
    }
    if (schema.type === 'array' && schema.items?.type === 'object') {
      walk(schema.items, `${path}[]`, optionalFrom);
      return;
    }
    const type = schema.type === 'array' ? `list of ${schema.items?.type ?? 'value'}` : (schema.type ?? 'value');
    const required = optionalFrom === '';
    const requiredWith =
      optionalFrom !== undefined && optionalFrom !== '' && optionalFrom !== path ? optionalFrom : undefined;
    keys.push({ path, type, required, ...(requiredWith === undefined ? {} : { requiredWith }) });
  };
  walk(z.toJSONSchema(sidecarSchema, { unrepresentable: 'any' }) as JsonSchema, '', '');
  return keys;
}

export function renderConfigReference(): string {
  const envByPath = new Map(SIDECAR_ENV.map((b) => [b.path.join('.'), b.name]));
  const envFor = (path: string): string => {
    for (let p = path; p !== ''; p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '') {
      const name = envByPath.get(p.replace(/\[\]$/, ''));
      if (name !== undefined) return p === path ? `\`${name}\`` : `(in \`${name}\`)`;
    }
    return '';
  };
  const rows = configKeys().map((key) => {
    const fallback = DEFAULTS[key.path];
    const presence = key.required
      ? 'required'
      : key.requiredWith !== undefined
        ? `required with \`${key.requiredWith}\``
        : fallback === undefined
          ? ''
          : `\`${fallback}\``;
    return `| \`${key.path}\` | ${key.type} | ${presence} | ${envFor(key.path)} | ${CONFIG_DOCS[key.path] ?? ''} |`;
  });
  return ['| key | type | default | environment | meaning |', '|---|---|---|---|---|', ...rows].join('\n');
}
