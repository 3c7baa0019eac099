// How many connections an admin-style port (the sidecar's and the gateway's admin port, `ca serve --admin-listen`)
// holds, and how quickly one that sends nothing goes. These ports take no credential and, on Kubernetes, listen on
// the pod's address for the kubelet: any pod of the cluster can reach them unless a NetworkPolicy says otherwise.
// Without a cap one client could open connections until the process ran out of file descriptors, and the inbound,
// the app hop and the SVID renewals with it. The kubelet opens one connection per probe and Prometheus keeps one, so
// a client address gets a quarter of the places and every other address still finds some.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { addTo, clientAddress, clientSourceKey, sweepTimeoutsWhileConnected } from '../platform/index.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import { RateLimitedLog } from './rate-limited-log.js';

/** Open connections an admin-style port holds; the next is closed at accept. Within the descriptors kept in reserve. */
export const ADMIN_MAX_CONNECTIONS = 64;

/** Open connections of one client address (the address itself: pods and nodes cannot pick theirs). */
export const ADMIN_MAX_CONNECTIONS_PER_SOURCE = ADMIN_MAX_CONNECTIONS / 4;

/**
 * node:http's options for an admin-style server: a head within 5 s, a request within 10 s, checked every second
 * (node:http checks every 30 s by default, so a connection that sent nothing held its place for up to 35 s).
 */
export const ADMIN_SERVER_TIMEOUTS = {
  headersTimeout: 5_000,
  requestTimeout: 10_000,
  connectionsCheckingInterval: 1_000,
} as const;

const LOG_INTERVAL_MS = 10_000;

/**
 * A connection with no byte read or written for this long is closed: one whose client stopped reading its answers
 * (the answer cannot be written out) held its place for good, and four addresses could keep the kubelet out. Idle
 * keep-alive connections go sooner, at node:http's keep-alive timeout.
 */
export const ADMIN_STALL_TIMEOUT_MS = 30_000;

/**
 * Caps `server`'s connections at ADMIN_MAX_CONNECTIONS, ADMIN_MAX_CONNECTIONS_PER_SOURCE per client (clientSourceKey); each
 * refusal is counted in meshauth_connections_rejected_total{direction="admin"} and logged (rate-limited). The timeouts
 * of ADMIN_SERVER_TIMEOUTS are checked while the port holds connections (call before it listens).
 */
export function limitAdminConnections(server: Server, metrics: Metrics, logger: Logger): void {
  sweepTimeoutsWhileConnected(server);
  const log = new RateLimitedLog(logger, metrics, 'connection_refused', LOG_INTERVAL_MS);
  const refuse = (reason: 'max_connections' | 'max_connections_per_source', remote: string | undefined) => {
    metrics.connectionsRejected.inc({ direction: 'admin', reason });
    log.warn({ direction: 'admin', reason, remote }, `connection refused: ${reason}`);
  };
  server.maxConnections = ADMIN_MAX_CONNECTIONS;
  server.on('drop', (data?: { remoteAddress?: string }) =>
    refuse('max_connections', clientAddress(data?.remoteAddress)),
  );
  server.on('close', () => log.close());
  guardAdminRequests(server, metrics, log);
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    // An IPv6 client by its /64: a host holds many addresses of its subnet, each would have had a share of its own.
    const source = clientSourceKey(socket.remoteAddress);
    const held = open.get(source) ?? 0;
    if (held >= ADMIN_MAX_CONNECTIONS_PER_SOURCE) {
      socket.destroy();
      refuse('max_connections_per_source', clientAddress(socket.remoteAddress));
      return;
    }
    addTo(open, source, 1);
    socket.once('close', () => addTo(open, source, -1));
  });
}

type AdminRejection = 'pipelined' | 'stalled';

/**
 * One request at a time per connection, and no connection that stops reading. The kubelet and Prometheus never
 * pipeline; a client that sent thousands of `GET /metrics` on one connection without reading had node:http start
 * each of them, every queued answer holding its own copy of the exposition, until the process ran out of heap
 * (about 2.5 s with a 192 MB heap). A second request while the first is unanswered closes the connection, as does
 * ADMIN_STALL_TIMEOUT_MS without a byte either way; each is counted in
 * meshauth_connections_rejected_total{direction="admin",reason="pipelined"|"stalled"} and logged (rate-limited).
 * Handlers skip a request whose connection is gone (`adminRequestRefused`).
 */
export function guardAdminRequests(
  server: Server,
  metrics: Metrics,
  log: { warn(fields: Record<string, unknown>, message: string): void },
): void {
  const reject = (socket: Socket, reason: AdminRejection) => {
    metrics.connectionsRejected.inc({ direction: 'admin', reason });
    log.warn(
      { direction: 'admin', reason, remote: clientAddress(socket.remoteAddress) },
      `connection closed: ${reason}`,
    );
    socket.destroy();
  };
  const answering = new WeakMap<Socket, ServerResponse>();
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    if (socket.destroyed) return; // the rest of a refused connection's requests, parsed from the same read
    const previous = answering.get(socket);
    // Ended (end() called) counts as answered: the next request of a keep-alive client may arrive before the last
    // answer's 'finish'.
    if (previous !== undefined && !previous.writableEnded && !previous.destroyed) {
      reject(socket, 'pipelined');
      return;
    }
    answering.set(socket, res);
  });
  server.setTimeout(ADMIN_STALL_TIMEOUT_MS);
  server.on('timeout', (socket: Socket) => {
    // node:http runs its keep-alive timeout on the same socket timer and emits it here too: an idle connection whose
    // last answer went out is closed as node:http would close it, not counted. A stall is an answer still owed.
    const last = answering.get(socket);
    if (last === undefined || last.writableFinished) socket.destroy();
    else reject(socket, 'stalled');
  });
}

/** True when the request's connection was closed before its handler ran (guardAdminRequests refused it). */
export function adminRequestRefused(req: IncomingMessage): boolean {
  return req.socket.destroyed;
}
