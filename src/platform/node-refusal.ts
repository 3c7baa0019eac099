// What a server answers for a request node:http refused before its handler saw it (a 'clientError'), and for an
// `Expect` node:http would answer with a bare 417: the edge gateway and the CA share the mapping, a bounded reason per
// kind of refusal. The parser's own code goes to the log line only: it is Node's vocabulary, unbounded by ours, and
// no metric label.
import { type ErrorCode, MeshauthError } from '../errors/index.js';

/** `badRequest`: the code of a malformed request at this server (the CA has its own). */
export function nodeRefusal(
  parserCode: string | undefined,
  badRequest: ErrorCode = 'MESHAUTH_ERR_BAD_REQUEST',
): MeshauthError {
  // node:http's own headersTimeout / requestTimeout checks (Http2SecureServer with allowHTTP1 runs them too).
  if (parserCode === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return new MeshauthError('MESHAUTH_ERR_REQUEST_TIMEOUT', 'request not received within the server timeout', {
      reason: 'request_timeout',
    });
  }
  if (parserCode === 'HPE_HEADER_OVERFLOW') {
    return new MeshauthError('MESHAUTH_ERR_HEADERS_TOO_LARGE', 'request head larger than the server accepts', {
      reason: 'headers_too_large',
    });
  }
  return new MeshauthError(badRequest, `HTTP parse error ${parserCode ?? ''}`.trim(), { reason: 'http_malformed' });
}

/**
 * `Expect` other than 100-continue (RFC 9110 §10.1.1): node:http would answer a bare 417 of its own, neither counted
 * nor logged; no meshauth server meets another expectation: 417 with its own code, counted and logged.
 */
export function expectationUnsupported(): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_EXPECTATION_FAILED', 'unsupported Expect', { reason: 'expectation' });
}
