// The name lookups of egress tunnels (`CONNECT host:port`). getaddrinfo runs on libuv's thread pool (four threads
// unless UV_THREADPOOL_SIZE says otherwise), which file reads, async crypto and the routes' system resolver share.
// Unbounded, an app opening tunnels to names that resolve slowly held every thread, and each CONNECT waited for as
// long as the system resolver retried (resolv.conf's timeout × attempts × search domains). So at most
// MAX_IN_FLIGHT lookups run at once, at most MAX_WAITING more wait their turn in arrival order, and every one is
// answered within the deadline, waiting included. A lookup past its deadline keeps its place until getaddrinfo
// returns: its thread is busy until then whatever the caller was told.
import { type LookupAddress, lookup } from 'node:dns';

export interface EgressLookupLimits {
  /** Lookups running at once: each holds a thread-pool thread until getaddrinfo returns. */
  readonly maxInFlight: number;
  /** Lookups waiting for a turn; past it a CONNECT is answered at once (dns_busy). */
  readonly maxWaiting: number;
}

export const EGRESS_LOOKUP_LIMITS: EgressLookupLimits = Object.freeze({ maxInFlight: 2, maxWaiting: 256 });

/** Why a lookup gave no addresses: the resolver's error, the deadline, or a full queue. */
export type EgressLookupFailure = 'dns' | 'dns_timeout' | 'dns_busy';

export type EgressLookupAnswer =
  | { readonly addresses: readonly LookupAddress[] }
  | { readonly failure: EgressLookupFailure; readonly cause?: Error };

interface PendingLookup {
  readonly host: string;
  readonly answer: (result: EgressLookupAnswer) => void;
  /** False once the caller left (its CONNECT's socket closed): a waiting lookup is then not started. */
  readonly wanted: () => boolean;
  timer: NodeJS.Timeout | undefined;
  answered: boolean;
}

export class EgressLookups {
  readonly #timeoutMs: number;
  readonly #maxInFlight: number;
  readonly #maxWaiting: number;
  readonly #waiting: PendingLookup[] = [];
  #inFlight = 0;

  constructor(timeoutMs: number, limits: Partial<EgressLookupLimits> = {}) {
    this.#timeoutMs = timeoutMs;
    this.#maxInFlight = limits.maxInFlight ?? EGRESS_LOOKUP_LIMITS.maxInFlight;
    this.#maxWaiting = limits.maxWaiting ?? EGRESS_LOOKUP_LIMITS.maxWaiting;
  }

  /** Every address of `host` (as getaddrinfo gives them), or why not; `answer` is called once. */
  lookup(host: string, answer: (result: EgressLookupAnswer) => void, wanted: () => boolean): void {
    if (this.#inFlight >= this.#maxInFlight && this.#waiting.length >= this.#maxWaiting) {
      answer({ failure: 'dns_busy' });
      return;
    }
    const pending: PendingLookup = { host, answer, wanted, timer: undefined, answered: false };
    pending.timer = setTimeout(onDeadline, this.#timeoutMs, this, pending);
    if (this.#inFlight < this.#maxInFlight) this.#start(pending);
    else this.#waiting.push(pending);
  }

  /** Answers a lookup past its deadline; one still waiting leaves the queue (it was never started). */
  deadline(pending: PendingLookup): void {
    const index = this.#waiting.indexOf(pending);
    if (index !== -1) this.#waiting.splice(index, 1);
    settle(pending, { failure: 'dns_timeout' });
  }

  #start(pending: PendingLookup): void {
    this.#inFlight += 1;
    lookup(pending.host, { all: true, verbatim: true }, (error, addresses) => {
      this.#inFlight -= 1;
      this.#next();
      if (error !== null) settle(pending, { failure: 'dns', cause: error });
      else if (addresses.length === 0) settle(pending, { failure: 'dns' });
      else settle(pending, { addresses });
    });
  }

  #next(): void {
    while (this.#inFlight < this.#maxInFlight) {
      const pending = this.#waiting.shift();
      if (pending === undefined) return;
      if (pending.wanted()) this.#start(pending);
      else clearTimeout(pending.timer);
    }
  }
}

function onDeadline(lookups: EgressLookups, pending: PendingLookup): void {
  lookups.deadline(pending);
}

function settle(pending: PendingLookup, result: EgressLookupAnswer): void {
  if (pending.answered) return;
  pending.answered = true;
  clearTimeout(pending.timer);
  pending.answer(result);
}
