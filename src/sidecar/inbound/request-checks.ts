// What a request head must satisfy before any hook sees it, so that the policy judges exactly what the app
// receives (pure, no I/O): one Host naming a host (and port), an `:authority` and `host` that agree on h2
// (else the policy and the app could read different hosts), an origin-form target, and on h2 the same header-list limit
// HTTP/1.1 has (HPACK size: name + value + 32 per field). Returns the error to answer with, or undefined.
import type { IncomingHttpHeaders } from 'node:http2';
import { isForwardedMethod, isHostPort } from '../../authz/index.js';
import { MeshauthError } from '../../errors/index.js';
import { connectionTokens } from '../http-headers.js';

/** Per-field overhead in the HPACK header list size. */
const FIELD_OVERHEAD = 32;

/**
 * The most header fields a request may have (HTTP/2: pseudo-header fields not counted); 431 above. node:http takes
 * 1,000: Node 24.21 (the version the tests run) refuses more, Node 20 keeps the first 1,000 in `req.headers` and drops the rest without a word, in
 * the sidecar's own view as in a Node app's. So a check of that view (a bearer token beside a passport) could miss a
 * line the app still gets, and a head padded to the limit could push what the sidecar sets out of an app's view. The
 * room left, 10 fields, is more than a sidecar adds (XFCC, the user and passport headers, X-Forwarded-For/-Proto).
 */
export const MAX_REQUEST_FIELDS = 990;
/**
 * What a hop that forwards to a peer's inbound takes (the outbound from its app, the gateway): what it forwards, with
 * the fields it adds (Host, the passport, X-Forwarded-*), must pass that inbound.
 */
export const MAX_FORWARDED_REQUEST_FIELDS = MAX_REQUEST_FIELDS - 10;

/** 431 for a head of more than `max` fields, given as their count. */
export function tooManyFields(fields: number, max = MAX_REQUEST_FIELDS): MeshauthError | undefined {
  if (fields <= max) return undefined;
  // Node 20 lists at most about 1,023 fields of a longer head: the count said is a floor.
  return new MeshauthError('MESHAUTH_ERR_HEADERS_TOO_LARGE', `more than ${max} header fields (${fields} or more)`, {
    reason: 'header_count',
  });
}

function badRequest(reason: string, message: string): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_BAD_REQUEST', message, { reason });
}

/** What an HTTP/1.1 request line's target may hold, as node:http's parser takes it: visible ASCII. */
const NOT_VISIBLE_ASCII = /[^\x21-\x7e]/;

/**
 * `/path…`: the only form the app can be sent. Not `OPTIONS *`: undici takes only a path, so asterisk form would be
 * admitted here and then fail at the app forward as the app being unavailable (and the outbound never sends it).
 */
function originForm(target: string): boolean {
  return target.charCodeAt(0) === 0x2f /* / */;
}

/**
 * A Transfer-Encoding value that is `chunked` alone. The next hop gets the body de-chunked without
 * Transfer-Encoding, so any other coding (`gzip, chunked`) would reach it undeclared; an unknown one (`xchunked`)
 * leaves the body length undefined.
 */
export function isChunkedOnly(value: string): boolean {
  return value.trim().toLowerCase() === 'chunked';
}

export function transferCodingRefused(): MeshauthError {
  return badRequest('transfer_encoding', 'Transfer-Encoding other than chunked');
}

/** HTTP/1.x: exactly one valid Host line (also on HTTP/1.0), origin-form target, no coding but chunked. */
export function checkH1Head(
  target: string,
  rawHeaders: readonly string[],
  maxFields = MAX_REQUEST_FIELDS,
): MeshauthError | undefined {
  if (!originForm(target)) return badRequest('target_form', 'request-target is not origin-form');
  const tooMany = tooManyFields(rawHeaders.length / 2, maxFields);
  if (tooMany !== undefined) return tooMany;
  let host: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') {
      if (!isChunkedOnly(rawHeaders[i + 1] as string)) return transferCodingRefused();
      continue;
    }
    if (name.length !== 4 || name.toLowerCase() !== 'host') continue;
    if (host !== undefined) return badRequest('host_repeated', 'more than one Host header');
    host = rawHeaders[i + 1] as string;
  }
  if (host === undefined) return badRequest('host_missing', 'no Host header');
  if (!isHostPort(host)) return badRequest('host_invalid', 'Host is not host[:port]');
  return undefined;
}

/**
 * h2, from the decoded list (`rawHeaders`: Node's header object keeps only the first of a repeated `host` or
 * `:authority`): one `:authority` (or one `host` without it) that is host[:port]; a `host` beside `:authority`
 * names the same authority; origin-form `:path`; the header list within the limits HTTP/1.1 has (431 above).
 */
export function checkH2Head(
  headers: IncomingHttpHeaders,
  rawHeaders: readonly string[],
  maxHeaderBytes: number,
  maxFields = MAX_REQUEST_FIELDS,
): MeshauthError | undefined {
  let size = 0;
  let pseudo = 0;
  let authority: string | undefined;
  let host: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    const value = rawHeaders[i + 1] as string;
    size += name.length + value.length + FIELD_OVERHEAD;
    if (name.charCodeAt(0) === 0x3a /* : */) pseudo += 1;
    if (name === ':authority') {
      if (authority !== undefined) return badRequest('host_repeated', 'more than one :authority');
      authority = value;
    } else if (name === 'host') {
      if (host !== undefined) return badRequest('host_repeated', 'more than one host header');
      host = value;
    }
  }
  const fields = rawHeaders.length / 2;
  // Every field costs at least 32 bytes, so the size limit bounds the field count too (16 KB: 512 fields).
  if (size > maxHeaderBytes) {
    return new MeshauthError('MESHAUTH_ERR_HEADERS_TOO_LARGE', `header list of ${fields} fields, ${size} bytes`, {
      reason: 'header_list_size',
    });
  }
  const tooMany = tooManyFields(fields - pseudo, maxFields);
  if (tooMany !== undefined) return tooMany;
  const path = headers[':path'];
  if (typeof path !== 'string' || !originForm(path)) {
    return badRequest('target_form', ':path is not origin-form');
  }
  // The app gets the path in an HTTP/1.1 request line, where node:http (llhttp) refuses what is not visible ASCII;
  // nghttp2 lets bytes above 0x7E through, which an HTTP/1.1 caller could not have sent.
  if (NOT_VISIBLE_ASCII.test(path)) return badRequest('bad_char', ':path has a character outside visible ASCII');
  const name = authority ?? host;
  if (name === undefined) return badRequest('host_missing', 'no :authority or host');
  if (!isHostPort(name)) return badRequest('host_invalid', ':authority is not host[:port]');
  if (authority !== undefined && host !== undefined && host.toLowerCase() !== authority.toLowerCase()) {
    return badRequest('host_authority_mismatch', 'host differs from :authority (RFC 9113 §8.3.1)');
  }
  return undefined;
}

/**
 * The received header lines a policy reads of a view a listener did not build (a listener's view carries the lines
 * the app will get, Exchange.appHeaderLines): every line of every header by lower-case name, in arrival order. From
 * an HTTP/1 raw list, because Node's `req.headers` keeps only the first `user-agent`, `content-type`, … while the app
 * receives every line. Without what never reaches the app, so that no condition is judged on input the app does not
 * get: the headers the request's `Connection` names, and names with `_` (dropped before the app, INBOUND_POLICY).
 */
export function headerLines(rawHeaders: readonly string[]): Map<string, string[]> {
  const lines = new Map<string, string[]>();
  const connectionNamed = connectionTokens(rawHeaders);
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    if (connectionNamed?.has(name) || name.includes('_')) continue;
    const value = rawHeaders[i + 1] as string;
    const list = lines.get(name);
    if (list === undefined) lines.set(name, [value]);
    else list.push(value);
  }
  return lines;
}

/**
 * The HTTP/2 request headers as the policy reads them: the object itself, or, when a name holds `_` (dropped before
 * the app), every other line by name (an h2 request cannot carry `Connection`: the protocol refuses it).
 */
export function h2HeaderView(headers: IncomingHttpHeaders): IncomingHttpHeaders | Map<string, string[]> {
  let underscored = false;
  for (const name in headers) {
    if (name.includes('_')) {
      underscored = true;
      break;
    }
  }
  if (!underscored) return headers;
  const lines = new Map<string, string[]>();
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || name.charCodeAt(0) === 0x3a /* : */ || name.includes('_')) continue;
    lines.set(name, typeof value === 'string' ? [value] : [...value]);
  }
  return lines;
}

/** The parser codes an unknown method ends in: `FOO`, `get`; RTSP's `DESCRIBE` and h2's `PRI` fail further on. */
const METHOD_PARSE_ERRORS: ReadonlySet<string> = new Set([
  'HPE_INVALID_METHOD',
  'HPE_INVALID_CONSTANT',
  'HPE_INVALID_VERSION',
]);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/;

/**
 * Whether node:http refused a head for its method (a 'clientError' with the chunk it parsed and where it stopped):
 * the request line holding that point starts with an HTTP token that is no forwarded method. Such a head gets the
 * refusal h2 gives the same method (MESHAUTH_ERR_METHOD_INVALID), not a parse error of its own. A read that ends
 * inside the method (`get` sent ahead of the rest) holds what there is of it: the same head refused the same way
 * however it is split.
 */
export function refusedForMethod(error: Error & { code?: string; rawPacket?: unknown; bytesParsed?: number }): boolean {
  const packet = error.rawPacket;
  if (!METHOD_PARSE_ERRORS.has(error.code ?? '') || !Buffer.isBuffer(packet)) return false;
  const at = Math.min(Math.max(error.bytesParsed ?? 0, 0), packet.length);
  const start = at === 0 ? 0 : packet.lastIndexOf(0x0a, at - 1) + 1;
  const space = packet.indexOf(0x20, start);
  const end = space === -1 ? packet.length : space;
  if (end === start || end - start > 32) return false;
  const method = packet.toString('latin1', start, end);
  return TOKEN.test(method) && !isForwardedMethod(method);
}
