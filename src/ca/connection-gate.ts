// The CA's door before TLS: at most `maxActive` connections are in their handshake or request at once; the next
// ones wait in arrival order, their TLS not started. Each CA call is a fresh TLS connection, so in a cluster-wide restart
// thousands arrive within a second: handshaking all of them at once made every handshake slow, clients timed out
// mid-handshake and retried, and a handshake finished for a request the admission queue then refused with 429 cost
// both sides a handshake for nothing. A waiting connection costs neither side CPU. One that waited `maxWaitMs`
// without a turn, or that finds `maxWaiting` ahead of it, is closed before its handshake: the client backs off and
// retries (the agent's jittered exponential backoff) at no cost to the CA.
// A slot is held from the handshake until the connection closes: the CA's server answers one request per connection
// and its timeouts (handshake 10 s, headers 10 s, request 30 s) bound the rest. Only a connection that has sent its
// first bytes reaches the gate (door.ts reads them first), so connections that say nothing cannot hold slots. A slot
// is not taken from a connection that is merely slow: in a storm the agents' own event loops lag by seconds, and
// letting more handshakes start then brings back the crowd the door is there to prevent.
// Past the door, the admission queue (load-shedding.ts) still bounds signing work and answers 429 + Retry-After.
// Bookkeeping only: sockets come in through a minimal interface and the clock is injected, so every boundary is
// unit-tested without a network.
import { nonNegativeInteger, positiveInteger } from './count-options.js';

/** Defaults per CA process: enough handshakes in flight to keep one core busy, a whole restart storm waiting. */
export const DEFAULT_MAX_ACTIVE_CONNECTIONS = 64;
export const DEFAULT_MAX_WAITING_CONNECTIONS = 10_000;
/**
 * As long as a patient client waits: served in arrival order, a waiting connection loses its turn only to this
 * deadline or to its own client giving up (door.ts notices a waiting client that leaves). The agent gives its
 * handshake 5 s more than this (src/agent/ca-client.ts), so the door, not the agent, decides. In a 10,000-agent
 * storm, 8 s here made 16,307 retries (each a new key, CSR and ClientHello on the agent), 30 s made 1,000–4,000
 * while the agent still gave up after about 20 s, and none since it waits longer.
 */
export const DEFAULT_MAX_CONNECTION_WAIT_MS = 30_000;

/** What the gate needs of a socket. */
export interface GatedSocket {
  once(event: 'close', listener: () => void): unknown;
  destroy(): void;
}

export type ConnectionRefusal = 'waiting_full' | 'wait_timeout';

export interface ConnectionGateOptions<S extends GatedSocket> {
  readonly maxActive?: number;
  readonly maxWaiting?: number;
  readonly maxWaitMs?: number;
  /** Milliseconds from a monotonic clock (default performance.now). */
  readonly now?: () => number;
  /** Hands an admitted socket to the TLS server (it starts reading there). */
  readonly admit: (socket: S) => void;
  /** Told about every connection closed before its handshake (metrics, rate-limited log). */
  readonly refused?: (reason: ConnectionRefusal) => void;
}

interface Waiting<S> {
  readonly socket: S;
  readonly arrivedAt: number;
  closed: boolean;
}

export class ConnectionGate<S extends GatedSocket> {
  readonly #maxActive: number;
  readonly #maxWaiting: number;
  readonly #maxWaitMs: number;
  readonly #now: () => number;
  readonly #admit: (socket: S) => void;
  readonly #refused: (reason: ConnectionRefusal) => void;
  /** Arrival order; entries whose client already left are skipped (and counted out of `#waitingCount`). */
  readonly #queue: Waiting<S>[] = [];
  #head = 0;
  #waitingCount = 0;
  #active = 0;

  constructor(options: ConnectionGateOptions<S>) {
    this.#maxActive = positiveInteger(options.maxActive ?? DEFAULT_MAX_ACTIVE_CONNECTIONS, 'maxActive');
    this.#maxWaiting = nonNegativeInteger(options.maxWaiting ?? DEFAULT_MAX_WAITING_CONNECTIONS, 'maxWaiting');
    this.#maxWaitMs = nonNegativeInteger(options.maxWaitMs ?? DEFAULT_MAX_CONNECTION_WAIT_MS, 'maxWaitMs');
    this.#now = options.now ?? (() => performance.now());
    this.#admit = options.admit;
    this.#refused = options.refused ?? (() => {});
  }

  /** Connections in their handshake or request. */
  get active(): number {
    return this.#active;
  }

  /** Connections waiting for a turn, their handshake not started. */
  get waiting(): number {
    return this.#waitingCount;
  }

  /** A new connection (it has sent its first bytes; the TLS server has not seen it). */
  arrive(socket: S): void {
    const nowMs = this.#now();
    this.#expire(nowMs);
    if (this.#active < this.#maxActive) {
      this.#start(socket);
      return;
    }
    if (this.#waitingCount >= this.#maxWaiting) {
      this.#refuse(socket, 'waiting_full');
      return;
    }
    const entry: Waiting<S> = { socket, arrivedAt: nowMs, closed: false };
    this.#queue.push(entry);
    this.#waitingCount += 1;
    socket.once('close', () => {
      if (entry.closed) return;
      entry.closed = true;
      this.#waitingCount -= 1;
    });
  }

  /** Closes the waiting connections that had no turn within maxWaitMs (called on arrivals and by a timer). */
  expire(): void {
    this.#expire(this.#now());
  }

  #expire(nowMs: number): void {
    for (let entry = this.#peek(); entry !== undefined; entry = this.#peek()) {
      if (nowMs - entry.arrivedAt < this.#maxWaitMs) return;
      this.#take();
      this.#refuse(entry.socket, 'wait_timeout');
    }
  }

  /** Closes every waiting connection (the server is stopping); admitted ones are the TLS server's to close. */
  close(): void {
    for (let entry = this.#take(); entry !== undefined; entry = this.#take()) entry.socket.destroy();
  }

  #start(socket: S): void {
    this.#active += 1;
    let released = false;
    socket.once('close', () => {
      if (released) return;
      released = true;
      this.#active -= 1;
      if (this.#active >= this.#maxActive) return;
      const entry = this.#take();
      if (entry !== undefined) this.#start(entry.socket);
    });
    this.#admit(socket);
  }

  #refuse(socket: S, reason: ConnectionRefusal): void {
    socket.destroy();
    this.#refused(reason);
  }

  /** The oldest connection still waiting, or undefined; drops entries whose client left. */
  #peek(): Waiting<S> | undefined {
    while (this.#head < this.#queue.length) {
      const entry = this.#queue[this.#head] as Waiting<S>;
      if (!entry.closed) return entry;
      this.#head += 1;
    }
    this.#compact();
    return undefined;
  }

  #take(): Waiting<S> | undefined {
    const entry = this.#peek();
    if (entry === undefined) return undefined;
    entry.closed = true;
    this.#head += 1;
    this.#waitingCount -= 1;
    this.#compact();
    return entry;
  }

  /** Drops the consumed prefix once it is most of the array (amortised O(1) per connection). */
  #compact(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue.splice(0, this.#head);
      this.#head = 0;
    } else if (this.#head === this.#queue.length) {
      this.#queue.length = 0;
      this.#head = 0;
    }
  }
}
