// The webhook port's connections: how many it holds (in all and per client address) and what a failed TLS handshake
// leaves behind. Each refusal is counted and logged (rate-limited: anyone who reaches the port can cause them in a
// loop). It installs listeners on the webhook's server; it neither listens nor answers requests.
import type { Server } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { clientAddress, clientSourceKey, tcpSocketOf } from '../platform/index.js';
import type { Metrics } from '../telemetry/metrics.js';
import { closedBeforeHandshake, tlsClientErrorReason } from '../tls/index.js';

/**
 * Connections the webhook holds at once. A connection costs 10-40 KB (before and after its handshake): without a cap,
 * 15,000 silent TCP connections took the process from 80 to 290 MB RSS, near the Deployment's 320 MiB limit. The API
 * server opens one connection per review in flight (a controller's burst of pod creations can reach hundreds), so
 * the cap is far above that while bounding the connections to about 40 MB.
 */
export const WEBHOOK_MAX_CONNECTIONS = 1024;
/**
 * What one client address may hold of the connections, as of the review budget: the port is open to every pod, and a
 * pod that filled the cap would keep the API server's reviews out (with failurePolicy Ignore, pods admitted without
 * their sidecar). Past the cap, an address holding fewer takes the place of the newest connection of the one
 * holding the most (makeRoom), so several pods together cannot keep the API server out either.
 */
const SOURCE_SHARE = 0.5;

type ConnectionRefusal = 'max_connections' | 'max_connections_per_source';

interface Log {
  warn(fields: Record<string, unknown>, message: string): void;
}

export interface WebhookConnectionOptions {
  readonly maxConnections: number;
  readonly metrics: Metrics;
  /** Where a refused connection is logged (`connection refused: <reason>`). */
  readonly connectionLog: Log;
  /** Where a failed handshake is logged (`TLS handshake refused`). */
  readonly handshakeLog: Log;
}

/** Caps `server`'s connections and counts its failed handshakes (meshauth_*{direction="admin"}, as its other refusals). */
export function guardWebhookConnections(server: Server, options: WebhookConnectionOptions): void {
  const { metrics, connectionLog, handshakeLog } = options;
  const refuse = (reason: ConnectionRefusal, remote: string | undefined) => {
    metrics.connectionsRejected.inc({ direction: 'admin', reason });
    connectionLog.warn({ direction: 'admin', reason, remote }, `connection refused: ${reason}`);
  };
  const share = Math.max(1, Math.floor(options.maxConnections * SOURCE_SHARE));
  // Each client address's open connections, oldest first; and how many there are in all.
  const bySource = new Map<string, Set<Socket>>();
  let total = 0;
  /**
   * The cap is full: the newest connection of the address holding the most makes room for `source`'s, if that
   * address holds more than `source` would with it; two addresses at half each can then not keep a third (the API
   * server) out, as a plain cap let them. False: `source`'s own connection is refused.
   */
  const makeRoom = (source: string): boolean => {
    let heaviest: [string, Set<Socket>] | undefined;
    for (const entry of bySource) if (entry[1].size > (heaviest?.[1].size ?? 0)) heaviest = entry;
    if (heaviest === undefined || heaviest[1].size <= (bySource.get(source)?.size ?? 0) + 1) return false;
    const newest = [...heaviest[1]].at(-1) as Socket;
    const remote = clientAddress(newest.remoteAddress);
    forget(newest, heaviest[0]);
    newest.destroy();
    refuse('max_connections', remote);
    return true;
  };
  const forget = (socket: Socket, source: string) => {
    const sockets = bySource.get(source);
    if (sockets?.delete(socket) !== true) return;
    total -= 1;
    if (sockets.size === 0) bySource.delete(source);
  };
  // First, before the TLS server wraps the socket: a refused one never begins its handshake.
  server.prependListener('connection', (socket: Socket) => {
    // An IPv6 client by its /64: a host holds many addresses of its subnet, each would have had a share of its own.
    const source = clientSourceKey(socket.remoteAddress);
    if ((bySource.get(source)?.size ?? 0) >= share) {
      socket.destroy();
      refuse('max_connections_per_source', clientAddress(socket.remoteAddress));
      return;
    }
    if (total >= options.maxConnections && !makeRoom(source)) {
      socket.destroy();
      refuse('max_connections', clientAddress(socket.remoteAddress));
      return;
    }
    let sockets = bySource.get(source);
    if (sockets === undefined) {
      sockets = new Set();
      bySource.set(source, sockets);
    }
    sockets.add(socket);
    total += 1;
    socket.once('close', () => forget(socket, source));
  });
  server.on('tlsClientError', (error: Error & { code?: string }, socket: TLSSocket) => {
    const raw = tcpSocketOf(socket);
    // Node does not close a socket whose handshake failed or timed out once 'tlsClientError' has a listener.
    socket.destroy();
    // No byte read: a port scan, or a connection refused above for its source (counted there), began no handshake.
    if (closedBeforeHandshake(error, raw?.bytesRead)) return;
    const reason =
      error.code === 'ERR_TLS_HANDSHAKE_TIMEOUT'
        ? 'handshake_timeout'
        : tlsClientErrorReason(error, socket.authorizationError);
    metrics.tlsHandshakeFailures.inc({ direction: 'admin', reason });
    handshakeLog.warn(
      { direction: 'admin', reason, remote: clientAddress(socket.remoteAddress), error: error.code ?? error.message },
      'TLS handshake refused',
    );
  });
}
