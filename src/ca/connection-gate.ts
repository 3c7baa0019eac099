// The CA's door before TLS: at most `maxActive` connections are in their handshake or request at once; the next
// ones wait, their TLS not started, in arrival order per source address and taking turns between sources. Each CA
// call is a fresh TLS connection, so in a cluster-wide restart thousands arrive within a second: handshaking all of
// them at once made every handshake slow, clients timed out mid-handshake and retried, and a handshake finished for
// a request the admission queue then refused with 429 cost both sides a handshake for nothing. A waiting connection
// costs neither side CPU. One that waited `maxWaitMs` without a turn, or that finds `maxWaiting` ahead of it, is
// closed before its handshake: the client backs off and retries (the agent's jittered exponential backoff) at no cost
// to the CA.
// A slot is held from the handshake until the connection closes: the CA's server answers one request per connection
// and its timeouts (handshake 10 s, headers 10 s, request 10 s) bound the rest. Only a connection that has sent its
// first bytes reaches the gate (door.ts reads them first), so connections that say nothing cannot hold slots. A slot
// is not taken from a connection that is merely slow: in a storm the agents' own event loops lag by seconds, and
// letting more handshakes start then brings back the crowd the door is there to prevent.
// A slot is held until the handshake times out by a client that stalls in it, so one source could fill every slot
// and, in arrival order, the waiting line in front of everybody else. Sources therefore take turns: a freed slot goes
// to the source that has waited longest for one among those holding fewer than a quarter of the slots, and a full
// line makes room by closing the newest waiting connection of a source holding more than a quarter of it. With one
// source (a load balancer that hides addresses, or the fleet bench) this is plain arrival order, as before.
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
/** A source holding more than this share of the slots, or of the waiting line, gives way to the others. */
const SOURCE_SHARE = 4;

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

/** The connections of one source address: how many hold a slot, and the ones waiting, oldest first. */
interface Source<S> {
  readonly address: string;
  active: number;
  waiting: number;
  readonly line: Line<Waiting<S>>;
}

interface Waiting<S> {
  readonly socket: S;
  readonly source: Source<S>;
  readonly arrivedAt: number;
  closed: boolean;
}

export class ConnectionGate<S extends GatedSocket> {
  readonly #maxActive: number;
  readonly #maxWaiting: number;
  readonly #maxWaitMs: number;
  readonly #activeShare: number;
  readonly #waitingShare: number;
  readonly #now: () => number;
  readonly #admit: (socket: S) => void;
  readonly #refused: (reason: ConnectionRefusal) => void;
  /** Every waiting connection in arrival order, for the deadline. */
  readonly #queue = new Line<Waiting<S>>();
  #waitingCount = 0;
  #active = 0;
  /** Sources with a connection in the gate. */
  readonly #sources = new Map<string, Source<S>>();
  /** Sources with connections waiting, the one served longest ago first (served ones move to the end). */
  readonly #turns = new Map<string, Source<S>>();
  /** Sources holding more than their share of the waiting line. */
  readonly #crowded = new Set<Source<S>>();

  constructor(options: ConnectionGateOptions<S>) {
    this.#maxActive = positiveInteger(options.maxActive ?? DEFAULT_MAX_ACTIVE_CONNECTIONS, 'maxActive');
    this.#maxWaiting = nonNegativeInteger(options.maxWaiting ?? DEFAULT_MAX_WAITING_CONNECTIONS, 'maxWaiting');
    this.#maxWaitMs = nonNegativeInteger(options.maxWaitMs ?? DEFAULT_MAX_CONNECTION_WAIT_MS, 'maxWaitMs');
    this.#activeShare = Math.max(1, Math.floor(this.#maxActive / SOURCE_SHARE));
    this.#waitingShare = Math.max(1, Math.floor(this.#maxWaiting / SOURCE_SHARE));
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

  /** A new connection from `source` (its address; it has sent its first bytes, the TLS server has not seen it). */
  arrive(socket: S, source = ''): void {
    const nowMs = this.#now();
    this.#expire(nowMs);
    const from = this.#sourceOf(source);
    if (this.#active < this.#maxActive) {
      this.#start(socket, from);
      return;
    }
    if (this.#waitingCount >= this.#maxWaiting && !this.#makeRoomFor(from)) {
      this.#forget(from);
      this.#refuse(socket, 'waiting_full');
      return;
    }
    const entry: Waiting<S> = { socket, source: from, arrivedAt: nowMs, closed: false };
    this.#queue.push(entry);
    from.line.push(entry);
    from.waiting += 1;
    this.#waitingCount += 1;
    if (from.waiting === 1) this.#turns.set(from.address, from);
    if (from.waiting > this.#waitingShare) this.#crowded.add(from);
    socket.once('close', () => {
      this.#leave(entry);
      this.#forget(from);
    });
  }

  /** Closes the waiting connections that had no turn within maxWaitMs (called on arrivals and by a timer). */
  expire(): void {
    this.#expire(this.#now());
  }

  #expire(nowMs: number): void {
    for (let entry = this.#queue.first(); entry !== undefined; entry = this.#queue.first()) {
      if (nowMs - entry.arrivedAt < this.#maxWaitMs) return;
      this.#leave(entry);
      this.#forget(entry.source);
      this.#refuse(entry.socket, 'wait_timeout');
    }
  }

  /** Closes every waiting connection (the server is stopping); admitted ones are the TLS server's to close. */
  close(): void {
    for (let entry = this.#queue.first(); entry !== undefined; entry = this.#queue.first()) {
      this.#leave(entry);
      this.#forget(entry.source);
      entry.socket.destroy();
    }
  }

  #sourceOf(address: string): Source<S> {
    let source = this.#sources.get(address);
    if (source === undefined) {
      source = { address, active: 0, waiting: 0, line: new Line() };
      this.#sources.set(address, source);
    }
    return source;
  }

  /** Drops a source that has nothing in the gate any more (only the record kept for its address). */
  #forget(source: Source<S>): void {
    if (source.active === 0 && source.waiting === 0 && this.#sources.get(source.address) === source) {
      this.#sources.delete(source.address);
    }
  }

  #start(socket: S, source: Source<S>): void {
    this.#active += 1;
    source.active += 1;
    let released = false;
    socket.once('close', () => {
      if (released) return;
      released = true;
      this.#active -= 1;
      source.active -= 1;
      this.#forget(source);
      if (this.#active < this.#maxActive) this.#admitNext();
    });
    this.#admit(socket);
  }

  /**
   * Gives a freed slot to the oldest waiting connection of the source served longest ago among those under their
   * share of the slots, or, when every waiting source holds its share already, of the source served longest ago.
   */
  #admitNext(): void {
    let fallback: Waiting<S> | undefined;
    for (const source of this.#turns.values()) {
      const entry = source.line.first();
      if (entry === undefined) {
        this.#turns.delete(source.address);
        continue;
      }
      if (source.active < this.#activeShare) {
        this.#startWaiting(entry);
        return;
      }
      fallback ??= entry;
    }
    if (fallback !== undefined) this.#startWaiting(fallback);
  }

  #startWaiting(entry: Waiting<S>): void {
    const { source } = entry;
    // Not forgotten in between: the source is about to hold a slot.
    this.#leave(entry);
    // Served now: to the back of the turns.
    this.#turns.delete(source.address);
    if (source.waiting > 0) this.#turns.set(source.address, source);
    this.#start(entry.socket, source);
  }

  /** A full line makes room by closing the newest waiting connection of a source over its share (not `from`). */
  #makeRoomFor(from: Source<S>): boolean {
    if (this.#crowded.has(from)) return false;
    const crowded = this.#crowded.values().next().value;
    if (crowded === undefined) return false;
    const newest = crowded.line.popLast();
    if (newest === undefined) return false;
    this.#leave(newest);
    this.#forget(crowded);
    this.#refuse(newest.socket, 'waiting_full');
    return true;
  }

  /**
   * A waiting connection stops waiting: admitted, expired, refused to make room, or its client left. The caller
   * forgets the source when it is done with it (an admitted one is about to hold a slot).
   */
  #leave(entry: Waiting<S>): void {
    if (entry.closed) return;
    entry.closed = true;
    const { source } = entry;
    source.waiting -= 1;
    this.#waitingCount -= 1;
    if (source.waiting <= this.#waitingShare) this.#crowded.delete(source);
    if (source.waiting === 0) source.line.clear();
  }

  #refuse(socket: S, reason: ConnectionRefusal): void {
    socket.destroy();
    this.#refused(reason);
  }
}

/**
 * Entries read from the front in the order they came, each until it is `closed` (no longer waiting): closed entries
 * are dropped as they are passed, and the consumed prefix once it is most of the array (amortised O(1) per entry).
 */
class Line<T extends { readonly closed: boolean }> {
  readonly #items: T[] = [];
  #head = 0;

  push(item: T): void {
    this.#items.push(item);
  }

  /** The oldest entry not closed. */
  first(): T | undefined {
    while (this.#head < this.#items.length) {
      const item = this.#items[this.#head] as T;
      if (!item.closed) {
        if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
          this.#items.splice(0, this.#head);
          this.#head = 0;
        }
        return item;
      }
      this.#head += 1;
    }
    this.clear();
    return undefined;
  }

  /** Takes the newest entry not closed off the end (closed ones after it go with it: each is passed once). */
  popLast(): T | undefined {
    while (this.#items.length > this.#head) {
      const item = this.#items.pop() as T;
      if (!item.closed) return item;
    }
    return undefined;
  }

  clear(): void {
    this.#items.length = 0;
    this.#head = 0;
  }
}
