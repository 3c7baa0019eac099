// The CA's door before TLS: the TCP listener in front of the CA's TLS server, which never listens itself. It accepts
// each connection, reads its first bytes, joins it to the ConnectionGate (connection-gate.ts: the limits and the
// order, by source address) and, at its turn, puts the bytes back and hands the socket to the TLS server. It keeps
// every socket it accepted until that closes, and closes them all on close(). It must not look at a request: that
// is the handler chain's, past TLS.
import type { Server as HttpsServer } from 'node:https';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import {
  clientAddress,
  clientSourceKey,
  listenOn,
  startTimeoutSweeper,
  sweepTimeoutsWhileConnected,
} from '../platform/index.js';
import type { Metrics, RateLimitedLog } from '../telemetry/index.js';
import { ConnectionGate, type ConnectionGateOptions, type ConnectionRefusal } from './connection-gate.js';

/**
 * How often silent connections and waiting ones past their wait are closed when no arrival or departure did it; only
 * while there are any (an idle CA sets no timer: on a VM each wake-up of an idle process costs it a few hundred µs).
 */
const GATE_SWEEP_INTERVAL_MS = 500;
/** What a waiting connection may send before its turn: one TLS record (its ClientHello) and its header. */
const MAX_EARLY_BYTES = 16_384 + 5 + 256;
/**
 * What all waiting connections may hold together. A ClientHello is a few hundred bytes (2 KiB with a post-quantum
 * key share), so a full line of honest clients holds a few MiB; without this bound one client could park a 16 KiB
 * record on each of the 10,000 places in the line and hold 160 MiB, past a pod's memory limit.
 */
export const MAX_EARLY_BYTES_TOTAL = 16 * 1024 * 1024;

/** The gate's limits; connection-gate.ts has the defaults. */
export type DoorLimits = Pick<ConnectionGateOptions<Socket>, 'maxActive' | 'maxWaiting' | 'maxWaitMs'>;

export interface CaDoorOptions {
  /** The CA's TLS server. It never listens: its connections come from `handOver`. */
  readonly tlsServer: HttpsServer;
  /** Starts the TLS handshake of a connection whose turn has come (its first bytes put back), for tlsServer. */
  readonly handOver: (socket: Socket) => void;
  readonly limits: DoorLimits;
  /** A connection that sends nothing for this long is closed. */
  readonly silentMs: number;
  readonly metrics: Metrics;
  /** The `ca_overloaded` log; shared with load shedding so that a storm writes one line per interval, not two. */
  readonly overloadLog: RateLimitedLog;
  /** Told about a connection closed for sending more than one TLS record before its handshake: no TLS client. */
  readonly oversizedFirstFlight?: (remote: string | undefined) => void;
}

export interface CaDoor {
  /**
   * Binds `host:port` (port 0 picks a free port); resolves with the port bound. With `reusePort`, other CA processes
   * may bind the same address and the kernel spreads connections over them.
   */
  listen(host: string, port: number, reusePort?: boolean): Promise<number>;
  /**
   * Connections accepted and not closed yet: waiting, silent, or with the TLS server. Counted from TCP accept:
   * during a storm most of them are waiting or in their handshake, invisible to the admission queue, whose
   * Retry-After counts them.
   */
  openConnections(): number;
  /**
   * Stops accepting and closes every connection the door holds: waiting, silent, and those the TLS server has not
   * finished with. Also the clean-up after a failed listen(). Resolves when the listener has closed.
   */
  close(): Promise<void>;
}

export function openDoor(options: CaDoorOptions): CaDoor {
  const { tlsServer, metrics, overloadLog, silentMs } = options;
  // Node starts the headers/request timeout sweep of an HTTP server on 'listening', which this one never emits. It
  // runs while the server holds connections.
  sweepTimeoutsWhileConnected(tlsServer);
  startTimeoutSweeper(tlsServer);
  const open = new Set<Socket>();
  // What each connection sent before its turn, put back for the TLS server when the turn comes.
  const early = new WeakMap<Socket, EarlyBytes>();
  // Their sum, and per source address what its connections hold (connections oldest first).
  let earlyTotal = 0;
  const bySource = new Map<string, SourceBytes>();
  const forget = (socket: Socket, sent: EarlyBytes) => {
    earlyTotal -= sent.size;
    const source = bySource.get(sent.source);
    if (source !== undefined) {
      source.bytes -= sent.size;
      source.connections.delete(socket);
      if (source.connections.size === 0) bySource.delete(sent.source);
    }
    sent.size = 0;
  };
  /** A connection closed before its handshake, for `reason`: counted and logged (at most once per interval). */
  const refuse = (reason: ConnectionRefusal | 'early_bytes') => {
    metrics.caConnectionsWaiting.set(gate.waiting);
    metrics.caRequestsRejected.inc({ reason: `overloaded_${reason}` });
    overloadLog.warn(
      { code: 'MESHAUTH_ERR_CA_OVERLOADED', reason, connectionsActive: gate.active, connectionsWaiting: gate.waiting },
      'CA overloaded: closing connections that found no turn before their TLS handshake',
    );
  };
  const gate = new ConnectionGate<Socket>({
    ...options.limits,
    now: () => performance.now(),
    admit: (socket) => {
      metrics.caConnectionsWaiting.set(gate.waiting);
      const sent = early.get(socket);
      if (sent !== undefined) {
        forget(socket, sent);
        sent.stopReading();
        // Nearly always one chunk (the ClientHello): put back as it is, not copied.
        socket.unshift(sent.chunks.length === 1 ? (sent.chunks[0] as Buffer) : Buffer.concat(sent.chunks));
        early.delete(socket);
      }
      options.handOver(socket);
    },
    refused: refuse,
  });
  // Connections that have not sent a byte yet, with when they came: only a connection that has spoken joins the
  // gate, so silent connections never hold a slot; they are closed after silentMs. While it waits, a connection is
  // read (up to one TLS record, normally its whole ClientHello) so that a client that leaves is noticed at once and
  // a waiting connection buffers no more than that; the bytes are put back for the TLS server at its turn.
  const silent = new Map<Socket, number>();
  // Every connection is silent first, so an arrival arms the sweep; it stops once nobody is silent or waiting.
  let sweeper: NodeJS.Timeout | undefined;
  const sweep = () => {
    const nowMs = performance.now();
    for (const [socket, arrivedAt] of silent) {
      // Insertion order is arrival order: the first one young enough ends the sweep.
      if (nowMs - arrivedAt < silentMs) break;
      silent.delete(socket);
      socket.destroy();
    }
    gate.expire();
    metrics.caConnectionsWaiting.set(gate.waiting);
    if (silent.size === 0 && gate.waiting === 0) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  };
  const listener: NetServer = createNetServer({ noDelay: true }, (socket) => {
    open.add(socket);
    silent.set(socket, performance.now());
    if (sweeper === undefined) {
      sweeper = setInterval(sweep, GATE_SWEEP_INTERVAL_MS);
      sweeper.unref();
    }
    const chunks: Buffer[] = [];
    const sourceKey = clientSourceKey(socket.remoteAddress);
    const sent: EarlyBytes = { chunks, size: 0, source: sourceKey, stopReading: () => undefined };
    socket.once('close', () => {
      open.delete(socket);
      silent.delete(socket);
      forget(socket, sent);
    });
    socket.on('error', () => socket.destroy());
    const onData = (chunk: Buffer) => {
      if (sent.size + chunk.length > MAX_EARLY_BYTES) {
        forget(socket, sent);
        socket.destroy();
        options.oversizedFirstFlight?.(clientAddress(socket.remoteAddress));
        return;
      }
      sent.size += chunk.length;
      earlyTotal += chunk.length;
      let source = bySource.get(sourceKey);
      if (source === undefined) {
        source = { bytes: 0, connections: new Map() };
        bySource.set(sourceKey, source);
      }
      source.bytes += chunk.length;
      source.connections.set(socket, sent);
      chunks.push(chunk);
      if (earlyTotal > MAX_EARLY_BYTES_TOTAL && !makeRoom(socket, sent.size)) return;
      if (chunks.length > 1) return;
      silent.delete(socket);
      gate.arrive(socket, sourceKey);
      metrics.caConnectionsWaiting.set(gate.waiting);
    };
    const onEnd = () => socket.destroy();
    sent.stopReading = () => {
      socket.pause();
      socket.off('data', onData);
      socket.off('end', onEnd);
    };
    early.set(socket, sent);
    socket.on('data', onData);
    socket.once('end', onEnd);
  });
  /**
   * The waiting connections hold more than MAX_EARLY_BYTES_TOTAL: from the source address holding the most, close
   * its oldest connection that holds at least as much as `arriving` (an honest ClientHello is small; one client's
   * pile of large records goes first), until they fit; `arriving` itself when there is none. False when `arriving`
   * was closed.
   */
  const makeRoom = (arriving: Socket, arrivingSize: number): boolean => {
    while (earlyTotal > MAX_EARLY_BYTES_TOTAL) {
      let heaviest: SourceBytes | undefined;
      for (const source of bySource.values())
        if (heaviest === undefined || source.bytes > heaviest.bytes) heaviest = source;
      let victim = arriving;
      for (const [socket, sent] of heaviest?.connections ?? []) {
        if (sent.size >= arrivingSize) {
          victim = socket;
          break;
        }
      }
      const victimSent = early.get(victim);
      if (victimSent !== undefined) forget(victim, victimSent);
      victim.destroy();
      refuse('early_bytes');
      if (victim === arriving) return false;
    }
    return true;
  };
  return {
    listen: (host, port, reusePort) => listenOn(listener, { host, port, reusePort: reusePort === true }, '--listen'),
    openConnections: () => open.size,
    close: () => {
      // A listener that never bound (listen() failed) has nothing to wait for.
      const closed = listener.listening
        ? new Promise<void>((resolve) => listener.close(() => resolve()))
        : Promise.resolve();
      clearInterval(sweeper);
      gate.close();
      for (const socket of open) socket.destroy();
      return closed;
    },
  };
}

/** The bytes one connection sent before its turn. */
interface EarlyBytes {
  readonly chunks: Buffer[];
  size: number;
  /** Its source address (clientSourceKey). */
  readonly source: string;
  stopReading: () => void;
}

/** What the waiting connections of one source address hold. */
interface SourceBytes {
  bytes: number;
  /** Oldest first. */
  readonly connections: Map<Socket, EarlyBytes>;
}
