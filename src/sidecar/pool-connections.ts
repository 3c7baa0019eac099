// The HTTP/1.1 pools' clients (undici Pool `factory`), whose connections end an aborted request with them.
//
// undici's abort of a running request destroys its connection with an informational error, and a client whose
// connection closes that way puts the request it carried back in its queue as pending: it then opens a new connection
// for a request that is already aborted, drops the request unwritten, and keeps the new connection, which never
// carries anything and has no keep-alive timer. The server at the other end sees a connection that never sends a
// request head and times it out (node:http answers 408 after its headersTimeout; a peer sidecar counts and logs it):
// one per abort. Destroyed with an error of ours instead, the connection fails its request, and nothing reconnects,
// whoever aborted it (a caller gone from ForwardHandler, a browser's AbortSignal at the gateway). undici's abort only
// fires for a request still running on that very connection, so no other request's connection is touched.
import type { Duplex } from 'node:stream';
import type { buildConnector, Client, Dispatcher } from 'undici';
import { UNDICI_ABORT_MESSAGE, UNDICI_CODES } from '../platform/index.js';

/**
 * A Pool `factory` making undici `ClientClass` clients whose connections end an aborted request instead of having it
 * connected for again (the class is passed in: undici is loaded only when a pool is needed, lazy-undici.ts).
 */
export function trackingClient(ClientClass: typeof Client): (origin: URL, options: object) => Dispatcher {
  return (origin, options) => {
    const { connect, ...rest } = options as Client.Options & { connect: buildConnector.connector };
    return new ClientClass(origin, {
      ...rest,
      connect: (connectOptions, callback) =>
        connect(connectOptions, (...args) => {
          const socket = args[1];
          if (socket !== null && socket !== undefined) endsAbortedRequest(socket);
          callback(...args);
        }),
    });
  };
}

function endsAbortedRequest(socket: Duplex): void {
  const destroy = socket.destroy;
  socket.destroy = function (this: Duplex, error?: Error) {
    const info =
      (error as { code?: string } | undefined)?.code === UNDICI_CODES.info && error?.message === UNDICI_ABORT_MESSAGE;
    return destroy.call(this, info ? new Error('request aborted') : error);
  };
}
