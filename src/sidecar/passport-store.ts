// The passports this sidecar's inbound verified (or minted as an origin), kept until they expire, so the outbound
// side can wrap exactly those for the next hop: a passport the app forwards that this sidecar never
// received is refused, so an app cannot inject one. Bounded three times: per owner (the end user a passport speaks
// for, and at the inbound the peer that sent it), in entries and in bytes of header text in total. A full store drops
// expired entries first, then the oldest entries of the owner holding the most, so one user flooding requests (or
// one peer sending many links for a user) only ever evicts its own passports, never another's live one.
import type { ReceivedPassport } from '../authn/passport/index.js';

export interface PassportStoreLimits {
  /** Entries in total. */
  readonly maxEntries: number;
  /** Entries of one owner (one end user, from one peer). */
  readonly maxPerOwner: number;
  /** Characters of passport header text in total (a passport is at most 16 KiB). */
  readonly maxBytes: number;
}

export const PASSPORT_STORE_LIMITS: PassportStoreLimits = Object.freeze({
  maxEntries: 10_000,
  maxPerOwner: 1_000,
  maxBytes: 16 * 1024 * 1024,
});

/** Full sweeps for expired entries at most this often (a store full of live entries must not sweep per request). */
const SWEEP_INTERVAL_MS = 1_000;

interface Entry {
  readonly passport: ReceivedPassport;
  readonly expiresAtMs: number;
  readonly owner: string;
}

export class PassportStore {
  readonly #limits: PassportStoreLimits;
  readonly #entries = new Map<string, Entry>();
  /** Each owner's entries (raw values) in insertion order. */
  readonly #byOwner = new Map<string, Set<string>>();
  #bytes = 0;
  #nextSweepMs = 0;

  constructor(limits: Partial<PassportStoreLimits> = {}) {
    this.#limits = { ...PASSPORT_STORE_LIMITS, ...limits };
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * `owner` names who the passport speaks for (e.g. `iss + " " + sub` of the end user); without it the origin
   * passport stands for its user (every wrap of one origin shares it).
   */
  remember(passport: ReceivedPassport, expiresAtMs: number, owner: string = passport.origin): void {
    if (this.#entries.has(passport.raw)) return;
    let mine = this.#byOwner.get(owner);
    if (mine !== undefined && mine.size >= this.#limits.maxPerOwner) {
      this.#delete(mine.values().next().value as string);
    } else if (this.#entries.size >= this.#limits.maxEntries) {
      this.#makeRoom(Date.now());
    }
    while (this.#bytes + passport.raw.length > this.#limits.maxBytes && this.#entries.size > 0) {
      this.#makeRoom(Date.now());
    }
    mine = this.#byOwner.get(owner);
    if (mine === undefined) {
      mine = new Set();
      this.#byOwner.set(owner, mine);
    }
    mine.add(passport.raw);
    this.#entries.set(passport.raw, { passport, expiresAtMs, owner });
    this.#bytes += passport.raw.length;
  }

  /** The passport whose header value is `raw`, if this sidecar received it and it has not expired. */
  lookup(raw: string, nowMs: number): ReceivedPassport | undefined {
    const entry = this.#entries.get(raw);
    if (entry === undefined) return undefined;
    if (entry.expiresAtMs <= nowMs) {
      this.#delete(raw);
      return undefined;
    }
    return entry.passport;
  }

  #makeRoom(nowMs: number): void {
    if (nowMs >= this.#nextSweepMs) {
      this.#nextSweepMs = nowMs + SWEEP_INTERVAL_MS;
      const before = this.#entries.size;
      for (const [raw, entry] of this.#entries) if (entry.expiresAtMs <= nowMs) this.#delete(raw);
      if (this.#entries.size < before) return;
    }
    // Still full of live entries: the owner holding the most gives up its oldest.
    let largest: Set<string> | undefined;
    for (const set of this.#byOwner.values()) if (largest === undefined || set.size > largest.size) largest = set;
    if (largest !== undefined) this.#delete(largest.values().next().value as string);
  }

  #delete(raw: string): void {
    const entry = this.#entries.get(raw);
    if (entry === undefined) return;
    this.#entries.delete(raw);
    this.#bytes -= raw.length;
    const mine = this.#byOwner.get(entry.owner);
    mine?.delete(raw);
    if (mine?.size === 0) this.#byOwner.delete(entry.owner);
  }
}
