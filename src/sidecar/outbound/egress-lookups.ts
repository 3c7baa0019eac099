// The name lookups of egress tunnels (`CONNECT host:port`). getaddrinfo runs on libuv's thread pool (four threads
// unless UV_THREADPOOL_SIZE says otherwise), which file reads, async crypto and the routes' system resolver share.
// Unbounded, an app opening tunnels to names that resolve slowly held every thread, and each CONNECT waited for as long
// as the system resolver retried (resolv.conf's timeout × attempts × search domains). So one lookup runs per name,
// shared by every CONNECT that asks for it meanwhile; at most EGRESS_LOOKUP_LIMITS.maxInFlight names are looked up at
// once and at most maxWaiting more wait their turn in arrival order; every CONNECT is answered within the deadline, its
// wait included, and one whose app left gives its place up at once. A lookup past its deadline keeps its place until
// getaddrinfo returns: its thread is busy until then, whatever the callers were told.
import { type LookupAddress, lookup } from 'node:dns';

export interface EgressLookupLimits {
  /** Names looked up at once: each holds a thread-pool thread until getaddrinfo returns. */
  readonly maxInFlight: number;
  /** Names waiting for a turn; past it a CONNECT is answered at once (dns_busy). */
  readonly maxWaiting: number;
}

export const EGRESS_LOOKUP_LIMITS: EgressLookupLimits = Object.freeze({ maxInFlight: 2, maxWaiting: 256 });

/** Why a lookup gave no addresses: the resolver's error, the deadline, or a full queue. */
export type EgressLookupFailure = 'dns' | 'dns_timeout' | 'dns_busy';

export type EgressLookupAnswer =
  | { readonly addresses: readonly LookupAddress[] }
  | { readonly failure: EgressLookupFailure; readonly cause?: Error };

/** One CONNECT waiting for its name's addresses. */
interface Caller {
  readonly name: NameLookup;
  readonly answer: (result: EgressLookupAnswer) => void;
  timer: NodeJS.Timeout | undefined;
  answered: boolean;
}

/** One name's lookup, waiting for a turn or under way, and the CONNECTs waiting for it. */
interface NameLookup {
  readonly host: string;
  readonly callers: Set<Caller>;
  started: boolean;
}

export class EgressLookups {
  readonly #timeoutMs: number;
  readonly #maxInFlight: number;
  readonly #maxWaiting: number;
  readonly #byName = new Map<string, NameLookup>();
  readonly #waiting: NameLookup[] = [];
  #inFlight = 0;

  constructor(timeoutMs: number, limits: Partial<EgressLookupLimits> = {}) {
    this.#timeoutMs = timeoutMs;
    this.#maxInFlight = limits.maxInFlight ?? EGRESS_LOOKUP_LIMITS.maxInFlight;
    this.#maxWaiting = limits.maxWaiting ?? EGRESS_LOOKUP_LIMITS.maxWaiting;
  }

  /**
   * Every address of `host` (as getaddrinfo gives them), or why not; `answer` is called once, unless the returned
   * cancel (the CONNECT's app left) is called first.
   */
  lookup(host: string, answer: (result: EgressLookupAnswer) => void): () => void {
    let name = this.#byName.get(host);
    let start = false;
    if (name === undefined) {
      if (this.#inFlight >= this.#maxInFlight && this.#waiting.length >= this.#maxWaiting) {
        answer({ failure: 'dns_busy' });
        return ignore;
      }
      name = { host, callers: new Set(), started: false };
      this.#byName.set(host, name);
      start = this.#inFlight < this.#maxInFlight;
      if (!start) this.#waiting.push(name);
    }
    const caller: Caller = { name, answer, timer: undefined, answered: false };
    caller.timer = setTimeout(onDeadline, this.#timeoutMs, this, caller);
    caller.timer.unref();
    name.callers.add(caller);
    // Started only once its caller is in: a resolver that answers at once (a cache, /etc/hosts) answers it too.
    if (start) this.#start(name);
    return () => this.#leave(caller);
  }

  /** Answers a CONNECT past its deadline; its name gives its place in line up if nobody else waits for it. */
  deadline(caller: Caller): void {
    settle(caller, { failure: 'dns_timeout' });
    this.#leave(caller);
  }

  #leave(caller: Caller): void {
    clearTimeout(caller.timer);
    caller.answered = true;
    const name = caller.name;
    name.callers.delete(caller);
    if (name.started || name.callers.size > 0) return;
    this.#byName.delete(name.host);
    const index = this.#waiting.indexOf(name);
    if (index !== -1) this.#waiting.splice(index, 1);
  }

  #start(name: NameLookup): void {
    name.started = true;
    this.#inFlight += 1;
    lookup(name.host, { all: true, verbatim: true }, (error, addresses) => {
      this.#inFlight -= 1;
      this.#byName.delete(name.host);
      const result: EgressLookupAnswer =
        error !== null ? { failure: 'dns', cause: error } : addresses.length === 0 ? { failure: 'dns' } : { addresses };
      for (const caller of name.callers) settle(caller, result);
      name.callers.clear();
      const next = this.#waiting.shift();
      if (next !== undefined) this.#start(next);
    });
  }
}

function onDeadline(lookups: EgressLookups, caller: Caller): void {
  lookups.deadline(caller);
}

function settle(caller: Caller, result: EgressLookupAnswer): void {
  if (caller.answered) return;
  caller.answered = true;
  clearTimeout(caller.timer);
  caller.answer(result);
}

function ignore(): void {}
