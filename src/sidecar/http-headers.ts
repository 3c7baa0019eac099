// Header hygiene at both edges of the data path: hop-by-hop headers and the headers named in `Connection` are removed
// (they are for one connection only), and every incoming `x-forwarded-client-cert` / `x-meshauth-*` is removed
// whatever its case or spelling, so the identity headers the sidecar puts ahead of the copy are the only ones.
// Arrays are built in one pass over the raw header list; no per-request closures or intermediate objects.
import type { IncomingHttpHeaders } from 'node:http';
import type { H2HeaderList } from '../platform/index.js';
import { isIdentityHeader, PASSPORT_HEADER } from './identity-headers.js';

export { isIdentityHeader, XFCC } from './identity-headers.js';

const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  // Not hop-by-hop, but already answered by Node's server (100 Continue) and refused by undici when forwarded.
  'expect',
]);

/** True for a hop-by-hop header (lower-case name): it describes one connection, never the message. */
export function isHopByHop(lowerName: string): boolean {
  return HOP_BY_HOP.has(lowerName);
}

/** Headers a `Connection` token may never remove: they frame or route the message. */
const PROTECTED_FROM_TOKENS: ReadonlySet<string> = new Set(['host', 'content-length', 'content-type']);

/** What a request's headers said about its body, found during the same pass. */
export const HAS_BODY = 1;
/**
 * A received identity header other than the passport was removed: someone tried to assert an identity only the
 * sidecar may assert (the passport is expected from a peer sidecar; the end-user step reads and replaces it).
 */
export const STRIPPED_IDENTITY = 2;

export interface ForwardPolicy {
  /** Keep an app-sent `x-meshauth-passport` (outbound: the app forwards the passport it received). */
  readonly keepPassport: boolean;
  /** Drop the incoming Host header (the caller sets its own, e.g. from an absolute-form URI). */
  readonly dropHost: boolean;
  /**
   * Drop forwarding and client-certificate headers (isForwardingHeader): the caller is outside the mesh, or a peer
   * not trusted to speak for a client (`inbound.trustForwardedFrom`).
   */
  readonly dropForwarding: boolean;
  /** Put the listener's own X-Forwarded-For / -Proto ahead of the copy (setForwarding): it received the client. */
  readonly setsForwarding: boolean;
  /**
   * Drop headers whose names contain `_` (as nginx does by default): CGI, WSGI, PHP and Rack hand `x_role` to the app
   * as `HTTP_X_ROLE`, the same as `x-role`, so an underscore spelling could pass beside a policy condition or an
   * identity header's strip and reach the app as the real thing.
   */
  readonly dropUnderscored: boolean;
  /**
   * Drop what only this listener may say about the request it received (isTerminatedClaim): it terminated the
   * caller's TLS and authorized the method of the request line.
   */
  readonly dropTerminatedClaims: boolean;
}

/**
 * The inbound, from a peer not trusted to forward: what it says about a client (X-Forwarded-Host, -For, -User,
 * Forwarded, …) is dropped. Apps behind a proxy trust those headers (Express `trust proxy`, Koa `app.proxy`,
 * auth-proxy apps reading X-Forwarded-User), so any workload of the mesh could otherwise name the host the app
 * serves or the client it serves it to, past a policy that judged the request's own Host.
 */
export const INBOUND_POLICY: ForwardPolicy = Object.freeze({
  keepPassport: false,
  dropHost: false,
  dropForwarding: true,
  setsForwarding: false,
  dropUnderscored: true,
  dropTerminatedClaims: true,
});
/** The inbound, from a peer in `inbound.trustForwardedFrom` (by default the vouchers: the gateway). */
export const INBOUND_FORWARDER_POLICY: ForwardPolicy = Object.freeze({ ...INBOUND_POLICY, dropForwarding: false });
/** The external listener: its callers are outside the mesh, so what they say about proxies and clients is dropped. */
export const EXTERNAL_POLICY: ForwardPolicy = Object.freeze({
  keepPassport: false,
  dropHost: false,
  dropForwarding: true,
  setsForwarding: true,
  dropUnderscored: true,
  dropTerminatedClaims: true,
});
export const OUTBOUND_ORIGIN_FORM: ForwardPolicy = Object.freeze({
  keepPassport: true,
  dropHost: false,
  dropForwarding: false,
  setsForwarding: false,
  dropUnderscored: false,
  dropTerminatedClaims: false,
});
export const OUTBOUND_PROXY_FORM: ForwardPolicy = Object.freeze({
  keepPassport: true,
  dropHost: true,
  dropForwarding: false,
  setsForwarding: false,
  dropUnderscored: false,
  dropTerminatedClaims: false,
});

const FORWARDING: ReadonlySet<string> = new Set([
  'forwarded',
  'x-real-ip',
  'client-cert',
  'client-cert-chain',
  // The other names in which proxies and CDNs pass on the client's address, which client-IP libraries read before
  // X-Forwarded-For (allow-lists, rate limits and audit logs that take them would take a forged address).
  'x-forwarded',
  'forwarded-for',
  'x-client-ip',
  'true-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  'x-cluster-client-ip',
  'x-original-forwarded-for',
  'proxy-client-ip',
  'wl-proxy-client-ip',
  'do-connecting-ip',
  'x-azure-clientip',
  'x-0-client-ip',
  'x-appengine-user-ip',
  'fly-client-ip',
  'cf-pseudo-ipv4',
  // The host and scheme a proxy says the client asked for, which frameworks build URLs and redirects from.
  'x-original-host',
  'x-host',
  'x-url-scheme',
  'x-scheme',
  'front-end-https',
  // The user an authenticating proxy says it signed in (oauth2-proxy, Grafana's and Apache's auth-proxy modes): an
  // app behind one takes it as the verified user.
  'remote-user',
  'x-remote-user',
  'x-webauth-user',
  'x-auth-request-user',
  'x-auth-request-email',
  'x-auth-request-preferred-username',
  'x-auth-request-groups',
  'x-auth-request-access-token',
  'x-remote-group',
  'cf-access-authenticated-user-email',
  'cf-access-jwt-assertion',
  // The client certificate a TLS-terminating proxy says it verified (nginx, HAProxy, Apache, AWS ALB).
  'x-client-cert',
  'x-amzn-mtls-clientcert',
  'x-amzn-mtls-clientcert-leaf',
]);

/**
 * Name families of the same: the client certificate's fields a proxy passes on (`ssl-client-verify`,
 * `x-ssl-client-subject-dn`, …) and the user a cloud edge signed in (`x-goog-authenticated-user-email`,
 * `x-amzn-oidc-identity`, `x-ms-client-principal-name`).
 */
const FORWARDING_PREFIXES: readonly string[] = [
  'x-forwarded-',
  'ssl-client-',
  'x-ssl-client-',
  'x-goog-authenticated-user-',
  'x-amzn-oidc-',
  'x-ms-client-principal',
];

const TERMINATED_CLAIMS: ReadonlySet<string> = new Set([
  'client-cert',
  'client-cert-chain',
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
  // The path overrides some frameworks route by (IIS rewrites, Symfony, Laminas, Yii): the policy judged the request
  // line's path.
  'x-original-url',
  'x-rewrite-url',
]);

/**
 * Headers that speak for the proxy which terminated the caller's TLS, so that proxy removes any it receives: the
 * Client-Cert / Client-Cert-Chain fields (an app behind a proxy that sets them takes them as the verified client
 * certificate), and the method-override headers that Express, Rails, Symfony and ASP.NET honour (policy decides on
 * the request line's method; an app that honoured `X-HTTP-Method-Override: DELETE` on an allowed GET would run a
 * method no rule allowed), and the path overrides `X-Original-URL` / `X-Rewrite-URL` for the same reason. Lower-case
 * name.
 */
export function isTerminatedClaim(lowerName: string): boolean {
  return TERMINATED_CLAIMS.has(lowerName);
}

/**
 * Headers in which a proxy tells the next hop about the client (Forwarded, every `x-forwarded-*` —
 * X-Forwarded-For/-Host/-Proto/-User/-Email/-Prefix…, which apps behind auth proxies trust —, X-Real-IP, the CDN
 * client-address fields such as True-Client-IP and CF-Connecting-IP, the host and scheme it was asked for, the user
 * an authenticating proxy signed in, the Client-Cert / Client-Cert-Chain fields): from a caller outside the mesh, or
 * a peer not trusted to forward, they are claims nobody checked. Lower-case name.
 */
export function isForwardingHeader(lowerName: string): boolean {
  if (FORWARDING.has(lowerName)) return true;
  // Every family starts with `s` or `x`: other names cost one comparison.
  const first = lowerName.charCodeAt(0);
  if (first !== 0x78 /* x */ && first !== 0x73 /* s */) return false;
  for (const prefix of FORWARDING_PREFIXES) if (lowerName.startsWith(prefix)) return true;
  return false;
}

/**
 * Copies an HTTP/1 raw header list (`[name, value, …]`) into `out` without hop-by-hop, Connection-named and
 * identity headers. Returns HAS_BODY when Content-Length > 0 or Transfer-Encoding was present, STRIPPED_IDENTITY
 * when an identity header other than the passport was dropped.
 */
export function copyRequestHeaders(raw: readonly string[], policy: ForwardPolicy, out: string[]): number {
  const tokens = connectionTokens(raw);
  let flags = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (lower === 'content-length') {
      if (raw[i + 1] !== '0') flags |= HAS_BODY;
    } else if (lower === 'transfer-encoding') {
      flags |= HAS_BODY;
      continue;
    } else if (HOP_BY_HOP.has(lower)) {
      continue;
    } else if (isIdentityHeader(lower, policy.keepPassport)) {
      if (lower !== PASSPORT_HEADER) flags |= STRIPPED_IDENTITY;
      continue;
    } else if (lower === 'host' && policy.dropHost) {
      continue;
    } else if (policy.dropForwarding && isForwardingHeader(lower)) {
      continue;
    } else if (policy.dropUnderscored && lower.includes('_')) {
      continue;
    } else if (policy.dropTerminatedClaims && TERMINATED_CLAIMS.has(lower)) {
      continue;
    }
    if (tokens?.has(lower)) continue;
    out.push(name, raw[i + 1] as string);
  }
  return flags;
}

/**
 * Copies HTTP/2 request headers (lower-case names, pseudo-headers skipped) into `out`, host from :authority.
 * Returns STRIPPED_IDENTITY when an identity header other than the passport was dropped.
 */
export function copyH2RequestHeaders(headers: IncomingHttpHeaders, out: string[], policy: ForwardPolicy): number {
  const { dropForwarding, dropUnderscored, dropTerminatedClaims } = policy;
  let flags = 0;
  for (const name in headers) {
    if (name.charCodeAt(0) === 0x3a /* : */ || HOP_BY_HOP.has(name)) continue;
    if (dropUnderscored && name.includes('_')) continue;
    if (isIdentityHeader(name, false)) {
      if (name !== PASSPORT_HEADER) flags |= STRIPPED_IDENTITY;
      continue;
    }
    if (dropForwarding && isForwardingHeader(name)) continue;
    if (dropTerminatedClaims && TERMINATED_CLAIMS.has(name)) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === 'string') out.push(name, value);
    else for (const v of value) out.push(name, v);
  }
  const authority = headers[':authority'];
  if (typeof authority === 'string' && headers.host === undefined) out.push('host', authority);
  return flags;
}

/** The first Host line's value of a raw `[name, value, …]` list. */
export function hostHeader(raw: readonly string[]): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 4 && name.toLowerCase() === 'host') return raw[i + 1];
  }
  return undefined;
}

/** The lower-case header names listed in `Connection`, or undefined when there are none beyond close/keep-alive. */
export function connectionTokens(raw: readonly string[]): Set<string> | undefined {
  let tokens: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length !== 10 || name.toLowerCase() !== 'connection') continue;
    tokens = connectionListed(raw[i + 1] as string, tokens);
  }
  return tokens;
}

/**
 * The lower-case header names a `Connection` value lists (hop-by-hop for this connection only),
 * added to `into`; close, keep-alive, the headers that frame or route the message and pseudo-headers (no field name
 * starts with a colon: `Connection: :status` must not take an HTTP/2 answer's status) are never listed.
 */
export function connectionListed(value: string, into?: Set<string>): Set<string> | undefined {
  let tokens = into;
  for (const part of value.split(',')) {
    const token = part.trim().toLowerCase();
    if (token === '' || token === 'close' || token === 'keep-alive' || token.charCodeAt(0) === 0x3a) continue;
    if (PROTECTED_FROM_TOKENS.has(token)) continue;
    tokens ??= new Set();
    tokens.add(token);
  }
  return tokens;
}

/**
 * Response headers from undici's raw list (Buffers) for an HTTP/1 ServerResponse: a flat string array without
 * hop-by-hop headers (Node frames the response itself), without names listed in the response's Connection and
 * without identity headers (an app cannot assert an identity to its caller). A 204 loses its Content-Length, which
 * no server may send with it (and HTTP/2 refuses).
 */
export function responseHeadersH1(raw: readonly Buffer[], out: string[], status = 200): string[] {
  let tokens: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as Buffer).toString('latin1');
    const lower = name.toLowerCase();
    const value = (raw[i + 1] as Buffer).toString('latin1');
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'connection') tokens = connectionListed(value, tokens);
      continue;
    }
    if (isIdentityHeader(lower, false)) continue;
    if (status === 204 && lower === 'content-length') continue;
    out.push(name, value);
  }
  return tokens === undefined ? out : out.filter((_, i, a) => !tokens.has((a[i - (i % 2)] as string).toLowerCase()));
}

/**
 * Whether a response's Transfer-Encoding (undici's raw list) names a coding besides chunked (and the no-op identity).
 * undici removes only the chunking and Transfer-Encoding is not passed on, so the coded bytes would reach the caller
 * as the body, undeclared.
 */
export function hasTransferCoding(raw: readonly Buffer[]): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as Buffer;
    if (name.length !== 17 || name.toString('latin1').toLowerCase() !== 'transfer-encoding') continue;
    for (const part of (raw[i + 1] as Buffer).toString('latin1').split(',')) {
      const coding = part.trim().toLowerCase();
      if (coding !== 'chunked' && coding !== 'identity') return true;
    }
  }
  return false;
}

/**
 * Response headers for an HTTP/2 stream, as a flat list (`responseHeadersOf` makes it what respond() takes): lower-case
 * names, no connection headers (illegal in h2) nor the names the response's Connection lists, no identity headers.
 */
export function responseHeadersH2(status: number, raw: readonly Buffer[]): H2HeaderList {
  const out: H2HeaderList = [':status', String(status)];
  let tokens: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const lower = (raw[i] as Buffer).toString('latin1').toLowerCase();
    const value = (raw[i + 1] as Buffer).toString('latin1');
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'connection') tokens = connectionListed(value, tokens);
      continue;
    }
    if (isIdentityHeader(lower, false)) continue;
    // A 204 has no content and may not state a length; nghttp2 would reset a non-zero one.
    if (status === 204 && lower === 'content-length') continue;
    out.push(lower, value);
  }
  if (tokens !== undefined) for (const token of tokens) removeHeader(out, token);
  return out;
}

/** A flat `[name, value, …]` header list by lower-case name, every line kept in order (what policy conditions read). */
export function headerLinesByName(flat: readonly string[]): Map<string, string[]> {
  const lines = new Map<string, string[]>();
  for (let i = 0; i < flat.length; i += 2) {
    const name = (flat[i] as string).toLowerCase();
    const list = lines.get(name);
    if (list === undefined) lines.set(name, [flat[i + 1] as string]);
    else list.push(flat[i + 1] as string);
  }
  return lines;
}

/** Removes every `name` entry (lower-case) from a flat `[name, value, …]` header list, in place. */
export function removeHeader(flat: string[], name: string): void {
  let write = 0;
  for (let read = 0; read < flat.length; read += 2) {
    if ((flat[read] as string).toLowerCase() === name) continue;
    flat[write++] = flat[read] as string;
    flat[write++] = flat[read + 1] as string;
  }
  flat.length = write;
}
