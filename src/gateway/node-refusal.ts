// The gateway's answer to a request node:http refused before the edge saw it (a 'clientError'): a bounded rule per
// kind of refusal, as the CA's (src/ca/node-refusals.ts). The parser's own code goes to the log line only: it is
// Node's vocabulary, unbounded by ours, and no metric label.
import { MeshauthError } from '../errors/index.js';

export function nodeRefusal(parserCode: string | undefined): MeshauthError {
  // node:http's own headersTimeout / requestTimeout checks (Http2SecureServer with allowHTTP1 runs them too).
  if (parserCode === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return new MeshauthError('MESHAUTH_ERR_REQUEST_TIMEOUT', 'request not received within the server timeout', {
      reason: 'request_timeout',
    });
  }
  if (parserCode === 'HPE_HEADER_OVERFLOW') {
    return new MeshauthError('MESHAUTH_ERR_HEADERS_TOO_LARGE', 'request head larger than the gateway accepts', {
      reason: 'headers_too_large',
    });
  }
  return new MeshauthError('MESHAUTH_ERR_BAD_REQUEST', `HTTP parse error ${parserCode ?? ''}`.trim(), {
    reason: 'http_malformed',
  });
}
