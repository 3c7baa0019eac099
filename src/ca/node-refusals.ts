// What node:http refuses before the CA's handler (api.ts) sees a request: a head it cannot parse or that is too
// large, a head or body still arriving at the server's timeouts, an `Expect` other than 100-continue (Node's bare
// 417), and CONNECT. Each gets the CA's JSON {code, message}
// instead of Node's bare 400/431/408 (or, for CONNECT, a closed connection without a byte), one count in
// meshauth_ca_requests_rejected_total under a bounded reason and one `ca_request_rejected` line, as api.ts refuses.
// It must not count a request the handler already has: a body cut by the timeout is counted there, once.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { MeshauthError } from '../errors/index.js';
import {
  answerOnSocket,
  clientAddress,
  expectationUnsupported,
  firstClientErrorOnly,
  nodeRefusal,
  triageClientError,
} from '../platform/index.js';
import { type CaRejectionTelemetry, recordCaRejection, rejectCaRequest } from './api.js';
import { TOKEN_PATH } from './oidc-metadata.js';
import { oauthErrorBody } from './token-request.js';

export type NodeRefusalOptions = CaRejectionTelemetry;

/** Installs the 'clientError', 'checkExpectation' and 'connect' listeners on the CA's HTTPS server. */
export function answerNodeRefusals(server: Server, options: NodeRefusalOptions): void {
  server.on(
    'clientError',
    firstClientErrorOnly((error: Error & { code?: string }, socket: Duplex) => onClientError(options, error, socket)),
  );
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    res.setHeader('connection', 'close'); // the client may send the body it asked about anyway
    rejectCaRequest(options, req, res, expectationUnsupported(), 'expectation');
  });
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    const rejection = new MeshauthError('MESHAUTH_ERR_CA_METHOD_NOT_ALLOWED', 'CONNECT is not served', {
      reason: 'method_not_allowed',
    });
    recordCaRejection(options, rejection, 'method_not_allowed', {
      method: 'CONNECT',
      remote: clientAddress(req.socket.remoteAddress),
    });
    answer(socket, rejection);
  });
}

function onClientError(options: NodeRefusalOptions, error: Error & { code?: string }, socket: Duplex): void {
  // TLS handshake failures are the TLS listener's (server.ts); a body the handler answered without reading (a 404,
  // 405 or 415) was counted then.
  const triage = triageClientError(error, socket);
  if (triage === 'handled') return;
  const { pending } = triage;
  const rejection = nodeRefusal(error.code, 'MESHAUTH_ERR_CA_BAD_REQUEST');
  // A request the handler has (its body still arriving at requestTimeout) is the handler's to count and log: closing
  // the connection aborts the body it waits for (read-body.ts, `body_incomplete`). Only the answer is written here.
  if (pending === undefined) {
    const remote = clientAddress((socket as Duplex & { remoteAddress?: string }).remoteAddress);
    recordCaRejection(options, rejection, rejection.reason ?? 'http_malformed', {
      method: undefined,
      remote,
      parserCode: error.code,
    });
  }
  // On the token endpoint, the OAuth {error, error_description} as every other answer there.
  answer(socket, rejection, pending !== undefined && isTokenPath(pending.req));
}

function isTokenPath(req: IncomingMessage): boolean {
  return req.url?.split('?', 1)[0] === TOKEN_PATH;
}

function answer(socket: Duplex, error: MeshauthError, oauth = false): void {
  answerOnSocket(
    socket,
    error.status,
    'application/json',
    `${JSON.stringify(oauth ? oauthErrorBody(error) : error.toJSON())}\n`,
  );
}
