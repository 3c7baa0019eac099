// What an app's request to the outbound names, read strictly: proxy form `http://host[:port]/path`
// or origin form with exactly one Host header; the authority must be a host name or IP literal with an optional
// port: userinfo (`b.demo:@internal.b.demo`), empty or odd hosts are refused, so the route is chosen on the same
// name every URL parser sees. Header fields that HTTP/2 allows only once (the set node:http2 enforces) must appear
// once: a request that carries two is refused here rather than failing later with a 503. Pure.
import { MeshauthError } from '../../errors/index.js';
import { hostHeader } from '../http-headers.js';

export interface RequestTarget {
  /** `host[:port]` as sent (proxy form: from the URL; origin form: the Host header). */
  readonly authority: string;
  /** Lower-case host without port or brackets, trailing dot removed: the route key. */
  readonly host: string;
  readonly path: string;
  readonly proxyForm: boolean;
}

const HOST_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;
const IPV6 = /^[0-9a-f:.]{2,45}$/i;
const PORT = /^[0-9]{1,5}$/;

/** Header names node:http2 sends at most once (its single-value list): duplicates are a 400 here. */
const SINGLE_VALUE: ReadonlySet<string> = new Set([
  'access-control-allow-credentials',
  'access-control-max-age',
  'access-control-request-method',
  'age',
  'authorization',
  'content-encoding',
  'content-language',
  'content-length',
  'content-location',
  'content-md5',
  'content-range',
  'content-type',
  'date',
  'dnt',
  'etag',
  'expires',
  'from',
  'host',
  'if-match',
  'if-modified-since',
  'if-none-match',
  'if-range',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'range',
  'referer',
  'retry-after',
  'tk',
  'upgrade-insecure-requests',
  'user-agent',
  'x-content-type-options',
]);

/**
 * The request target, or the 400 to answer. `raw` is Node's rawHeaders list. `http11`: an HTTP/1.1 request must carry
 * Host in every form, an HTTP/1.0 one only in origin form.
 */
export function readRequestTarget(url: string, raw: readonly string[], http11 = true): RequestTarget | MeshauthError {
  const duplicate = duplicateSingleValue(raw);
  if (duplicate !== undefined) {
    return badRequest(
      duplicate === 'host' ? 'more than one Host header' : `header ${duplicate} sent more than once`,
      duplicate === 'host' ? 'duplicate_host' : 'duplicate_header',
      { header: duplicate },
    );
  }
  let authority: string | undefined;
  let path: string;
  let proxyForm = false;
  if (url.charCodeAt(0) === 0x2f /* / */) {
    authority = hostHeader(raw);
    path = url;
  } else if (url.length > 7 && url.slice(0, 7).toLowerCase() === 'http://') {
    const slash = url.indexOf('/', 7);
    authority = slash === -1 ? url.slice(7) : url.slice(7, slash);
    path = slash === -1 ? '/' : url.slice(slash);
    proxyForm = true;
  } else {
    return badRequest('request-target must be http:// or origin form', 'target_form');
  }
  if (authority === undefined) return badRequest('Host header missing', 'missing_host');
  const host = hostOfAuthority(authority);
  if (host === undefined) return badRequest('Host is not a host name and port', 'bad_host');
  if (proxyForm && http11 && hostHeader(raw) === undefined) return badRequest('Host header missing', 'missing_host');
  return { authority, host, path, proxyForm };
}

/** Lower-case host of `host[:port]` / `[v6][:port]`, or undefined when it is not one (userinfo, spaces, …). */
export function hostOfAuthority(authority: string): string | undefined {
  let host: string;
  let port: string | undefined;
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    if (end === -1) return undefined;
    host = authority.slice(1, end);
    const rest = authority.slice(end + 1);
    if (rest !== '' && !rest.startsWith(':')) return undefined;
    port = rest === '' ? undefined : rest.slice(1);
    if (!IPV6.test(host) || !host.includes(':')) return undefined;
  } else {
    const colon = authority.indexOf(':');
    host = colon === -1 ? authority : authority.slice(0, colon);
    port = colon === -1 ? undefined : authority.slice(colon + 1);
    if (host.length === 0 || host.length > 254 || !HOST_NAME.test(host)) return undefined;
  }
  if (port !== undefined && (!PORT.test(port) || Number(port) === 0 || Number(port) > 65535)) return undefined;
  const lower = host.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/** Names seen by duplicateSingleValue; one module-level scratch list (the call is synchronous): no allocation. */
const seen: string[] = [];

/** The first single-value header name present twice, or undefined. */
function duplicateSingleValue(raw: readonly string[]): string | undefined {
  seen.length = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const lower = (raw[i] as string).toLowerCase();
    if (!SINGLE_VALUE.has(lower)) continue;
    if (seen.includes(lower)) return lower;
    seen.push(lower);
  }
  return undefined;
}

function badRequest(message: string, reason: string, detail?: Readonly<Record<string, string>>): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_BAD_REQUEST', message, {
    reason,
    ...(detail === undefined ? {} : { detail }),
  });
}
