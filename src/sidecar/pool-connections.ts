// The HTTP/1.1 pools' clients (undici Pool `factory`): each handler dispatched to a client learns how to reach the
// connection its request is written to, so that an exchange abandoned by its caller can end that connection itself.
//
// undici's own abort destroys the connection with an informational error, and a client whose connection closes that
// way puts the request it carried back in its queue as pending: it then opens a new connection for a request that is
// already aborted, drops the request unwritten, and keeps the new connection, which never carries anything and has no
// keep-alive timer. The server at the other end sees a connection that never sends a request head and times it out
// (node:http answers 408 after its headersTimeout; a peer sidecar counts and logs it): one per abort. Destroyed first
// with an error of ours, the connection fails its request instead, and nothing reconnects.
import type { Duplex } from 'node:stream';
import { type buildConnector, Client, type Dispatcher } from 'undici';
import { UNDICI_ABORT_MESSAGE, UNDICI_CODES } from '../platform/index.js';

const kConnection = Symbol('meshauth.poolConnection');

/** A dispatch handler that a tracking client tells where its request goes. */
interface Tracked {
  [kConnection]?: TrackingClient;
}

class TrackingClient extends Client {
  socket: Duplex | undefined;

  constructor(origin: URL, options: Client.Options & { connect: buildConnector.connector }) {
    const holder: { client?: TrackingClient } = {};
    const connect = options.connect;
    super(origin, {
      ...options,
      connect: (connectOptions, callback) =>
        connect(connectOptions, (...args) => {
          const socket = args[1];
          if (socket !== null && socket !== undefined) endsAbortedRequest(socket);
          if (holder.client !== undefined && args[1] !== null) holder.client.socket = args[1];
          callback(...args);
        }),
    });
    holder.client = this;
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    (handler as Tracked)[kConnection] = this;
    return super.dispatch(options, handler);
  }
}

/**
 * What `destroyConnection` does, for an abort that does not go through it (the gateway's request to an HTTP/1.1 peer
 * ends with its browser's AbortSignal): undici's abort of a running request destroys the connection with its
 * informational error, replaced here by one of ours, so the aborted request fails with it instead of being put back
 * and connected for again.
 */
function endsAbortedRequest(socket: Duplex): void {
  const destroy = socket.destroy;
  socket.destroy = function (this: Duplex, error?: Error) {
    const info =
      (error as { code?: string } | undefined)?.code === UNDICI_CODES.info && error?.message === UNDICI_ABORT_MESSAGE;
    return destroy.call(this, info ? new Error('request aborted') : error);
  };
}

/** Pool `factory`: clients that tell their handlers their connection (see `destroyConnection`). */
export function trackingClient(origin: URL, options: object): Dispatcher {
  return new TrackingClient(origin, options as Client.Options & { connect: buildConnector.connector });
}

/**
 * Destroys the connection a running request of `handler` is written to (one request per connection: the pools do
 * not pipeline). Call it before undici's abort, which then finds the connection destroyed already.
 */
export function destroyConnection(handler: object, error: Error): void {
  (handler as Tracked)[kConnection]?.socket?.destroy(error);
}
