// The passports this sidecar's inbound verified (or minted as an origin), kept until they expire, so the outbound
// side can wrap exactly those for the next hop (SPEC §5): a passport the app forwards that this sidecar never
// received is refused, so an app cannot inject one. Bounded; expired entries are dropped as new ones arrive.
import type { ReceivedPassport } from '../authn/passport/index.js';

const MAX_ENTRIES = 10_000;

interface Entry {
  readonly passport: ReceivedPassport;
  readonly expiresAtMs: number;
}

export class PassportStore {
  readonly #entries = new Map<string, Entry>();

  remember(passport: ReceivedPassport, expiresAtMs: number): void {
    if (this.#entries.size >= MAX_ENTRIES) this.#evict(Date.now());
    this.#entries.set(passport.raw, { passport, expiresAtMs });
  }

  /** The passport whose header value is `raw`, if this sidecar received it and it has not expired. */
  lookup(raw: string, nowMs: number): ReceivedPassport | undefined {
    const entry = this.#entries.get(raw);
    if (entry === undefined) return undefined;
    if (entry.expiresAtMs <= nowMs) {
      this.#entries.delete(raw);
      return undefined;
    }
    return entry.passport;
  }

  #evict(nowMs: number): void {
    for (const [raw, entry] of this.#entries) if (entry.expiresAtMs <= nowMs) this.#entries.delete(raw);
    // Still full of live entries: drop the oldest half (Map iterates in insertion order).
    if (this.#entries.size >= MAX_ENTRIES) {
      let drop = this.#entries.size / 2;
      for (const raw of this.#entries.keys()) {
        if (drop-- <= 0) break;
        this.#entries.delete(raw);
      }
    }
  }
}
