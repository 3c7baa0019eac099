// Error responses of the sidecar: JSON `{code, message}` with the registry's fixed sentence (no client input echoed),
// plus optional fields that may reach the caller (outbound: the host that has no route). Never a stack.
import { STATUS_CODES } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { MeshauthError } from '../errors/index.js';
import { closeAfterEarlyResponse } from './inbound/request-body.js';

export function errorJson(error: MeshauthError, extra?: Readonly<Record<string, string>>): string {
  return JSON.stringify(extra === undefined ? error.toJSON() : { ...error.toJSON(), ...extra });
}

/** What writeErrorH1 writes to: node:http's ServerResponse, or a lean lane's LeanResponse (lean-lane.ts). */
export interface H1ErrorSink {
  readonly headersSent: boolean;
  writeHead(status: number, headers: Readonly<Record<string, string | number>>): unknown;
  end(body: string): unknown;
  destroy(): unknown;
}

/** Writes the error on an HTTP/1 response; `close` adds `Connection: close` (framing errors, draining). */
export function writeErrorH1(
  res: H1ErrorSink,
  error: MeshauthError,
  extra?: Readonly<Record<string, string>>,
  close = false,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = errorJson(error, extra);
  res.writeHead(error.status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...(close ? { connection: 'close' } : {}),
  });
  res.end(body);
}

/**
 * Writes the error on an h2 stream (`extraHeaders` on its head, `extraBody` fields in its JSON), or resets a stream
 * whose head already went out.
 */
export function writeErrorH2(
  stream: ServerHttp2Stream,
  error: MeshauthError,
  extraHeaders?: Readonly<Record<string, string>>,
  extraBody?: Readonly<Record<string, string>>,
): void {
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent) {
    // RST_STREAM(INTERNAL_ERROR) without END_STREAM: the response cannot be completed, so the client must see a
    // failure, not an end. Http2Stream.close() would end the writable side (END_STREAM) before resetting;
    // destroy(error) does not.
    stream.destroy(new Error(error.message));
    return;
  }
  const body = errorJson(error, extraBody);
  stream.respond({
    ':status': error.status,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...extraHeaders,
  });
  stream.end(body);
  // A request body still coming is not wanted: RST_STREAM(NO_ERROR) once the answer is flushed, so the stream is
  // freed, not left half-open until the idle timeout resets it (INTERNAL_ERROR, which a client reads as a failure).
  closeAfterEarlyResponse(stream);
  resetIfNotTaken(stream);
}

/** How long a caller has to take a whole error answer (a few hundred bytes) before its stream is reset. */
export const ERROR_ANSWER_DEADLINE_MS = 10_000;

/**
 * Resets `stream`, whose whole answer was just written, if the caller has not taken it within
 * ERROR_ANSWER_DEADLINE_MS. A caller that never opens its flow-control window never takes the body, and node:http2's
 * stream timer is put off by anything the session writes (the PING answers a caller can ask for at will): such a
 * stream, and the connection it keeps open, would otherwise stay for ever. RST_STREAM(INTERNAL_ERROR), as for the
 * sidecar's other cut answers.
 */
export function resetIfNotTaken(stream: ServerHttp2Stream): void {
  const deadline = setTimeout(resetUntaken, ERROR_ANSWER_DEADLINE_MS, stream);
  deadline.unref();
  stream.once('close', () => clearTimeout(deadline));
}

function resetUntaken(stream: ServerHttp2Stream): void {
  // Also a stream already closed but not yet destroyed (its readable side not ended): destroy() sends no reset then,
  // but frees it.
  if (!stream.destroyed) stream.destroy(new Error('answer not taken'));
}

/** A whole HTTP/1.1 error response written straight to a socket the HTTP server is not handling, then closed. */
export function endSocketWithError(
  socket: Duplex,
  error: MeshauthError,
  extra?: Readonly<Record<string, string>>,
): void {
  const body = errorJson(error, extra);
  socket.end(
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Error'}\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}
