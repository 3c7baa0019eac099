// What a server answers for a request node:http refused before its handler saw it (a 'clientError'), and for an
// `Expect` node:http would answer with a bare 417: the edge gateway, the CA and the admin listeners share the
// mapping, a bounded reason per kind of refusal, and the CA and the admin listeners the triage and the raw answer.
// The parser's own code goes to the log line only: it is Node's vocabulary, unbounded by ours, and no metric label.
import { type ServerResponse, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { type ErrorCode, MeshauthError } from '../errors/index.js';
import { pendingResponse } from './node-internals.js';

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
 * `Expect` other than 100-continue: node:http would answer a bare 417 of its own, neither counted
 * nor logged; no meshauth server meets another expectation: 417 with its own code, counted and logged.
 */
export function expectationUnsupported(): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_EXPECTATION_FAILED', 'unsupported Expect', { reason: 'expectation' });
}

/** How long an answer to a broken request may take to flush before its connection is cut. */
const ANSWER_GRACE_MS = 1_000;

/**
 * The first steps of a 'clientError' on a server that answers each connection's requests in order (the CA's API, the
 * admin listeners): a client that went away or never finished its TLS handshake, a request answered already, or a
 * connection that carried a response before (the broken bytes are most likely the unread body of a request answered
 * then, counted then; a second answer would be read as the reply to a next request) is closed here and `handled` is
 * returned. Otherwise the refusal is the caller's to count and answer, on the response pending (if any).
 */
export function triageClientError(
  error: Error & { code?: string },
  socket: Duplex,
): 'handled' | { readonly pending: ServerResponse | undefined } {
  // node:https passes failed TLS handshakes on as client errors too: no request was refused.
  if (error.code === 'ECONNRESET' || !socket.writable || /^ERR_(TLS|SSL)_/.test(error.code ?? '')) {
    socket.destroy();
    return 'handled';
  }
  const pending = pendingResponse(socket as Parameters<typeof pendingResponse>[0]);
  if (pending?.headersSent === true) {
    // Answered already (a GET whose body then broke the parser), or cut mid-answer: let what was written flush.
    closeAfterFlush(socket, pending);
    return 'handled';
  }
  if (pending === undefined && (socket as Duplex & { bytesWritten?: number }).bytesWritten !== 0) {
    socket.destroy();
    return 'handled';
  }
  return { pending };
}

/** A whole HTTP/1.1 response written straight to the socket (no response object to answer on), then closed. */
export function answerOnSocket(socket: Duplex, status: number, contentType: string, body: string): void {
  closeAfterFlush(socket, socket);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\ncontent-type: ${contentType}\r\n` +
      `cache-control: no-store\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

function closeAfterFlush(socket: Duplex, writer: { once(event: 'finish', listener: () => void): unknown }): void {
  const close = () => socket.destroy();
  writer.once('finish', close);
  setTimeout(close, ANSWER_GRACE_MS).unref();
}
