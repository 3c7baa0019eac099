// A reload of files several callers may ask for at once. Under load a reload can take longer than the interval it
// runs at, and two overlapping reloads could finish out of order and put older material back: so one run at a time,
// and callers that come while it runs wait for that run instead of starting another.

export class SingleFlight {
  readonly #task: () => Promise<void>;
  readonly #minIntervalMs: number;
  #running: Promise<void> | undefined;
  #lastStart = Number.NEGATIVE_INFINITY;

  /** `minIntervalMs`: a call sooner than that after the last run began returns at once without running. */
  constructor(task: () => Promise<void>, minIntervalMs = 0) {
    this.#task = task;
    this.#minIntervalMs = minIntervalMs;
  }

  run(): Promise<void> {
    if (this.#running !== undefined) return this.#running;
    const now = Date.now();
    const elapsed = now - this.#lastStart;
    // A negative elapsed time is a wall clock stepped back (NTP, a resumed VM), not a recent run: skipping until the
    // clock caught up would stop the reloads for as long as the step, even without an interval.
    if (elapsed >= 0 && elapsed < this.#minIntervalMs) return Promise.resolve();
    this.#lastStart = now;
    this.#running = this.#task().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }
}
