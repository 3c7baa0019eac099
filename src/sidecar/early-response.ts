// An HTTP/1.1 response that finished before its request body ended, at either listener that reads HTTP/1.1 (the
// inbound's and the outbound's): the peer, its app or the sidecar answered without waiting for the rest.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { keepReadingAfterEnd } from '../platform/index.js';

/**
 * True while `req`'s body is still to arrive: one was declared (chunked, or a length above 0) and the parser has not
 * seen its end. An answer written now is early: it says `connection: close`, and the connection is closed behind it.
 * (`complete` alone is false for a bodiless request too while its own 'request' handler runs.)
 */
export function bodyStillComing(req: IncomingMessage): boolean {
  if (req.complete) return false;
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** How long a connection closed after an early response may go without receiving anything. */
const LINGER_MS = 1_000;

/** The longest a connection closed after an early response keeps receiving its body (nginx's lingering_time). */
const LINGER_CAP_MS = 30_000;

/**
 * The connection cannot carry another request, so it is closed, as HTTP/1.1 servers do, instead of waiting out the
 * keep-alive or request timeout with its place under the connection limits. Our side is ended after the answer (its
 * bytes are queued ahead of the FIN), which a client reads as a clean close. Like nginx's lingering close, the rest
 * of the body is read and discarded (keepReadingAfterEnd), and the socket is destroyed once the client closes too,
 * once nothing has arrived for LINGER_MS, or after LINGER_CAP_MS at most: destroying it while the upload still flows
 * would answer the next bytes with a TCP reset, which can make the client drop the response it has not read yet.
 * Until then it is in `answeredEarly`: nothing is written on it again, and no request is started on it.
 */
export function lingerAfterEarlyResponse(socket: Socket, req: IncomingMessage, answeredEarly: WeakSet<Socket>): void {
  if (!keepReadingAfterEnd(socket, req)) return;
  answeredEarly.add(socket);
  socket.end();
  socket.setTimeout(LINGER_MS);
  socket.once('timeout', destroyThis);
  const cap = setTimeout(destroySocket, LINGER_CAP_MS, socket).unref();
  socket.once('close', () => clearTimeout(cap));
}

function destroyThis(this: Socket): void {
  this.destroy();
}

function destroySocket(socket: Socket): void {
  socket.destroy();
}
