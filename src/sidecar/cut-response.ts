// Ends an HTTP/1.x response whose body was cut (upstream reset, idle timeout), so the caller can tell. A chunked or
// Content-Length body shows the cut once the connection closes early; an HTTP/1.0 response without Content-Length is
// close-delimited, so a clean close would end it like a complete body: its connection is reset (TCP RST) instead.
import type { ServerResponse } from 'node:http';
import { resetSocket } from './tcp/reset-socket.js';

/** Returns true when the socket is being reset (the caller must leave it to that, not destroy it first). */
export function cutResponse(res: ServerResponse): boolean {
  const req = res.req as ServerResponse['req'] | undefined;
  const socket = res.socket;
  if (req?.httpVersionMajor === 1 && req.httpVersionMinor === 0 && socket !== null && !socket.destroyed) {
    // resetSocket destroys the socket itself once the TCP socket under it is reset (a TLS socket: on a timer, so a
    // destroy here would close it cleanly first).
    resetSocket(socket);
    return true;
  }
  res.destroy();
  return false;
}
