// Sends a TCP RST instead of a FIN: how a tunnel passes a reset on (the peer of a reset connection must see a
// reset too, not a clean end that would look like a complete reply). Node can only reset a socket that owns a
// TCP handle, so for a TLS socket the reset goes to the TCP socket under it.
import type { Socket } from 'node:net';
import { tcpSocketOf } from '../../platform/index.js';

/** Resets `socket` (through `tcp`, its TCP socket, when given); falls back to a plain destroy when it cannot. */
export function resetSocket(socket: Socket, tcp: Socket | undefined = tcpSocketOf(socket)): void {
  if (tcp === undefined || tcp === socket) {
    reset(socket, socket);
    return;
  }
  // Closing the TCP handle under a TLS socket while OpenSSL is still writing (the NewSessionTicket right after
  // the handshake, or from inside a TLS callback) crashes Node 20 (SIGSEGV): stop reading now, reset on a timer,
  // after the poll phase has completed those writes.
  socket.pause();
  setTimeout(() => reset(socket, tcp), 0);
}

function reset(socket: Socket, tcp: Socket): void {
  if (!tcp.destroyed && !tcp.connecting) {
    try {
      tcp.resetAndDestroy();
    } catch {
      // not a TCP handle after all (e.g. a pipe): the destroy below still closes it
    }
  }
  socket.destroy();
}
