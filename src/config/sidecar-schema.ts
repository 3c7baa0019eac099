// The shape of sidecar.yaml as a strict zod schema: unknown keys are rejected at every level, values
// are checked (host:port, durations, SPIFFE IDs) but not defaulted — defaults are filled by resolveSidecarConfig,
// so validating and defaulting stay two steps.
import { isIP } from 'node:net';
import { z } from 'zod';
import { CLAIM_BYTES_RANGE } from '../authn/claim-size.js';
import { SpiffeId, TrustDomain } from '../identity/index.js';
import { booleanFlag } from './boolean-flag.js';
import { parseDuration, TIMER_RANGE_MESSAGE, withinTimerRange } from './duration.js';
import { isLoopbackHost, parseHostPort } from './host-port.js';
import { refuseForeignIds } from './id-trust-domain.js';
import { JWKS_FILE_HINT } from './jwks-file-hint.js';
import { isRouteIdPattern, isRouteKey, parseEgressEntry, parseRouteAddress } from './route-match.js';
import { secretFilePath } from './secret-path.js';

/**
 * A string in a format: a value of another type (YAML `listen: 15006`, `appTimeout: 30`) gets the format's own
 * message instead of zod's "expected string, received number". A missing key keeps zod's (the loader says so).
 * `explain` gives a more precise message for some refused texts (undefined: `message`).
 */
function formatted(
  message: string,
  check: (value: string) => boolean,
  explain?: (value: string) => string | undefined,
) {
  return z
    .string({ error: (issue) => (issue.input === undefined ? undefined : `${message}, not ${kindOf(issue.input)}`) })
    .refine(check, {
      error: (issue) =>
        (explain !== undefined && typeof issue.input === 'string' ? explain(issue.input) : undefined) ?? message,
    });
}

/** `host:99999`: the port is what is wrong, not the shape (the host part must be one). */
function portOutOfRange(value: string): string | undefined {
  const match = /^(.*):(\d+)$/.exec(value);
  if (match === null || Number(match[2]) <= 65535 || parseHostPort(`${match[1]}:1`) === undefined) return undefined;
  return `port ${match[2]} is out of range: a port is at most 65535`;
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'a map' : `a ${typeof value}`;
}

const hostPort = formatted(
  'expected host:port, e.g. 127.0.0.1:8080 (IPv6 as [::1]:8080)',
  (v) => parseHostPort(v) !== undefined,
  portOutOfRange,
);

/**
 * `outbound.dns.servers`: what node:dns setServers() takes, an IP literal and a port. A host name used to pass and end
 * the start with a raw "Invalid IP address" (exit 1), and port 0 with a native assertion failure (abort, exit 134).
 */
const dnsServer = formatted(
  'expected the IP address and port of a DNS server, e.g. 10.96.0.10:53 or [fd00::a]:53',
  (v) => {
    const server = parseHostPort(v);
    return server !== undefined && server.port > 0 && isIP(server.host) !== 0;
  },
);

const loopbackHostPort = hostPort.refine((v) => isLoopbackHost(parseHostPort(v)?.host ?? ''), {
  message: 'the outbound listener must be on a loopback address (127.0.0.1, ::1 or localhost)',
});

/** A duration string above zero; the message names examples of the kind of span the key takes. */
const positiveDuration = (examples: string) =>
  formatted(`expected a positive duration such as ${examples}`, (v) => {
    try {
      return parseDuration(v) > 0;
    } catch {
      return false;
    }
  });

// Every sidecar duration becomes a Node timer: bounded so none silently turns into 1 ms (duration.ts).
const duration = positiveDuration('500ms, 30s, 10m or 1h').refine(withinTimerRange, { message: TIMER_RANGE_MESSAGE });

// A span compared with token times, never a timer: no timer bound.
const tokenLifetime = positiveDuration('1h or 24h');

export const spiffeIdSchema = formatted(
  'expected a SPIFFE ID, e.g. spiffe://example.org/ns/shop/sa/orders',
  (v) => SpiffeId.tryParse(v) !== undefined,
);

const trustDomain = formatted(
  'expected a trust domain name of lower-case letters, digits, ".", "-" and "_", e.g. example.org',
  (v) => tryTrustDomain(v),
);

const routeHost = z.string().refine((v) => isRouteKey(v.toLowerCase()), {
  message:
    'route keys are host names such as orders.shop, or patterns where * stands for one label (*.shop, *.*.svc.cluster.local); no port, no scheme',
});
/**
 * Route keys are host names, matched case-insensitively (resolveSidecarConfig lower-cases them): two keys that differ
 * only in case are one route, and the resolved config kept the last of them without a word. Refused instead, so
 * what a reviewer reads in the file is what the sidecar does.
 */
function distinctRouteKeys(routes: Record<string, unknown>, ctx: z.core.$RefinementCtx<Record<string, unknown>>) {
  const seen = new Map<string, string>();
  for (const key of Object.keys(routes)) {
    const first = seen.get(key.toLowerCase());
    if (first === undefined) {
      seen.set(key.toLowerCase(), key);
      continue;
    }
    ctx.addIssue({
      code: 'custom',
      message: `${JSON.stringify(first)} and ${JSON.stringify(key)} are the same route (host names are case-insensitive): keep one`,
    });
  }
}

const egressEntry = formatted(
  'expected a host name or *.domain wildcard, optionally with :port (default 443); never a loopback name',
  (v) => parseEgressEntry(v) !== undefined,
);

/** The route's peer address: `host:port`, where host may be the template `{host}` (the requested host name). */
const routeAddress = formatted(
  'expected host:port (a DNS name or IP of the peer sidecar) or {host}:port, e.g. {host}:15006',
  (v) => parseRouteAddress(v) !== undefined,
);

/** An expected peer ID: a SPIFFE ID, or a pattern ending in `/sa/*` and/or using `{namespace}`. */
const routeId = formatted(
  'expected a SPIFFE ID (spiffe://example.org/ns/shop/sa/orders) or a pattern ending in /sa/* and/or using {namespace}',
  (v) => isRouteIdPattern(v) || SpiffeId.tryParse(v) !== undefined,
);

const url = formatted('expected an absolute URL, e.g. https://host:8443', (v) => URL.canParse(v));
// A relative path (`./jwks.json`) is the likely mistake of a user with no identity provider: name the file form.
const jwksUri = formatted(`expected an absolute URL; ${JWKS_FILE_HINT}`, (v) => URL.canParse(v));

/** The CA is only ever reached over TLS (its API authenticates by the bundle): an http URL can never work. */
const caUrl = formatted(
  'expected an https:// URL of meshauth ca serve, e.g. https://meshauth-ca.meshauth.svc:8443',
  (v) => URL.canParse(v) && new URL(v).protocol === 'https:',
);

/** `inbound.endUser`; validated further (algorithm allow-list, fetchable URLs) by src/authn. */
export const endUserSchema = z.strictObject({
  required: booleanFlag().optional(),
  issuers: z
    .array(
      z.strictObject({
        issuer: url,
        audiences: z.array(z.string().min(1)).min(1),
        jwksUri: jwksUri.optional(),
        caFile: z.string().min(1).optional(),
        algorithms: z.array(z.string().min(1)).min(1),
        typ: z.string().min(1).optional(),
      }),
    )
    .min(1),
  vouchers: z.array(spiffeIdSchema).optional(),
  claims: z.array(z.string().min(1)).optional(),
  forwardOriginalToken: booleanFlag().optional(),
  maxClaimBytes: z.number().int().min(CLAIM_BYTES_RANGE.min).max(CLAIM_BYTES_RANGE.max).optional(),
  maxTokenLifetime: tokenLifetime.optional(),
});

/**
 * `inbound.external`: an optional public listener (server TLS only, no client certificate) for API
 * clients that present bearer tokens. Its certificate is a normal server certificate clients verify by host name
 * (not the SVID); both files are PEM, read once at start.
 */
export const externalSchema = z.strictObject({
  listen: hostPort,
  cert: z.string().min(1),
  key: secretFilePath('the private key'),
});

export const routeSchema = z.strictObject({
  address: routeAddress,
  ids: z.array(routeId).min(1).optional(),
});

/** `outbound.tcp` values: where the local port's connections are tunnelled to (ALPN meshauth-tcp/2). */
export const tcpRouteSchema = z.strictObject({
  address: routeAddress,
  ids: z.array(spiffeIdSchema).min(1),
});

const count = z.number().int().positive();

/** `inbound.limits`: every bound of the inbound listeners (SECURITY.md lists the defaults). */
export const inboundLimitsSchema = z.strictObject({
  maxConnections: count.optional(),
  maxHandshakes: count.optional(),
  handshakeTimeout: duration.optional(),
  maxConnectionsPerPeer: count.optional(),
  maxConnectionsPerSource: count.optional(),
  // An HTTP/2 SETTINGS value (at most 2^32-1): a larger one passed validation, /readyz said ready,
  // and the first peer connection threw ERR_HTTP2_INVALID_SETTING_VALUE out of the accept path, crashing the sidecar.
  maxConcurrentStreams: count
    .max(2 ** 32 - 1, { message: 'expected at most 4294967295 (the HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS range)' })
    .optional(),
  streamIdleTimeout: duration.optional(),
  sessionIdleTimeout: duration.optional(),
  appConnections: count.optional(),
  // 0: no peer has a value of its own (every peer is `other`), for meshes whose IDs are per pod.
  maxPeerIdLabels: z.number().int().min(0).optional(),
  maxHeaderBytes: z
    .number()
    .int()
    .min(1024)
    .max(1024 * 1024)
    .optional(),
});

const probeTarget = z.strictObject({
  port: z.number().int().min(1).max(65535),
  path: z.string().startsWith('/', { message: 'expected an absolute path such as /healthz' }),
});

/** `admin.appProbes`: the app containers' own probes, forwarded by `/app-health/<container>/<kind>`. */
export const appProbesSchema = z.record(
  z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, { message: 'expected a container name' }),
  z.strictObject({ livez: probeTarget.optional(), readyz: probeTarget.optional(), startupz: probeTarget.optional() }),
);

export const sidecarSchema = z
  .strictObject({
    trustDomain,
    // `token` names the file of the join or service-account token: the token itself there was logged at every attempt.
    ca: z.strictObject({ url: caUrl, bundle: z.string().min(1), token: secretFilePath('the token') }),
    inbound: z
      .strictObject({
        listen: hostPort.optional(),
        app: hostPort.optional(),
        policy: z.string().min(1).optional(),
        tls12: booleanFlag().optional(),
        appTimeout: duration.optional(),
        endUser: endUserSchema.optional(),
        external: externalSchema.optional(),
        limits: inboundLimitsSchema.optional(),
        tcp: z.strictObject({ app: hostPort }).optional(),
        trustForwardedFrom: z.array(spiffeIdSchema).optional(),
      })
      // External clients are authenticated by bearer tokens only: without issuers nobody could be let in.
      .refine((inbound) => inbound.external === undefined || inbound.endUser !== undefined, {
        path: ['external'],
        message: 'requires inbound.endUser (the issuers whose bearer tokens external clients present)',
      })
      .optional(),
    outbound: z
      .strictObject({
        listen: loopbackHostPort.optional(),
        routes: z.record(routeHost, routeSchema).superRefine(distinctRouteKeys).optional(),
        egress: z.array(egressEntry).optional(),
        timeout: duration.optional(),
        http2: booleanFlag().optional(),
        dns: z.strictObject({ servers: z.array(dnsServer).min(1).optional() }).optional(),
        tcp: z.record(loopbackHostPort, tcpRouteSchema).optional(),
        limits: z.strictObject({ maxConnections: count.optional() }).optional(),
      })
      .optional(),
    admin: z.strictObject({ listen: hostPort.optional(), appProbes: appProbesSchema.optional() }).optional(),
    drainTimeout: duration.optional(),
  })
  .superRefine(idsInTrustDomain);

export type SidecarFile = z.infer<typeof sidecarSchema>;
export type EndUserFile = z.infer<typeof endUserSchema>;
export type ExternalFile = z.infer<typeof externalSchema>;
export type InboundLimitsFile = z.infer<typeof inboundLimitsSchema>;

/**
 * Every ID the sidecar expects of a peer (route and tunnel `ids`, `endUser.vouchers`) is in its own trust domain.
 * meshauth has no federation: a peer's SVID is accepted only in the sidecar's trust domain, so a route expecting
 * another one passed validation and then failed every request with 502 MESHAUTH_ERR_PEER_IDENTITY.
 */
function idsInTrustDomain(file: Record<string, unknown>, ctx: z.core.$RefinementCtx): void {
  // zod runs this even when other keys failed: values of the wrong type are skipped (their own issues name them).
  const own = file.trustDomain;
  if (typeof own !== 'string' || !tryTrustDomain(own)) return;
  const check = (ids: unknown, path: readonly (string | number)[]) => refuseForeignIds(own, ids, path, ctx);
  const outbound = file.outbound as
    | { routes?: Record<string, { ids?: unknown }>; tcp?: Record<string, { ids?: unknown }> }
    | undefined;
  for (const [host, route] of Object.entries(outbound?.routes ?? {})) {
    check(route?.ids, ['outbound', 'routes', host, 'ids']);
  }
  for (const [listen, route] of Object.entries(outbound?.tcp ?? {})) {
    check(route?.ids, ['outbound', 'tcp', listen, 'ids']);
  }
  const inbound = file.inbound as { endUser?: { vouchers?: unknown }; trustForwardedFrom?: unknown } | undefined;
  check(inbound?.endUser?.vouchers, ['inbound', 'endUser', 'vouchers']);
  check(inbound?.trustForwardedFrom, ['inbound', 'trustForwardedFrom']);
}

function tryTrustDomain(value: string): boolean {
  try {
    TrustDomain.parse(value);
    return !value.startsWith('spiffe://');
  } catch {
    return false;
  }
}
