// A counter bumped on every proxied request costs prom-client a label object, its validation and a label hash per
// call (inc on a labels() child does all three again). A CountTally hands out one cell per label set instead: the
// request path adds to a plain number, and the counter is brought up to date when anything reads it (the exposition,
// a test's get()), through the counter's collect hook.
import type { Counter } from 'prom-client';

/** One label set's increments since the counter was last read. */
export interface CountCell {
  pending: number;
}

interface Entry<L extends string> extends CountCell {
  readonly child: ReturnType<Counter<L>['labels']>;
}

export class CountTally<L extends string> {
  readonly #counter: Counter<L>;
  readonly #entries: Entry<L>[] = [];

  /**
   * `counter` must call flush() from its collect hook, or the cells' counts never reach it. Its reset() (a Registry's
   * resetMetrics) also drops what the cells hold: counts from before a reset would reappear at the next read.
   */
  constructor(counter: Counter<L>) {
    this.#counter = counter;
    const reset = counter.reset.bind(counter);
    counter.reset = () => {
      for (const entry of this.#entries) entry.pending = 0;
      reset();
    };
  }

  /**
   * A new cell for one label set: the caller keeps it (one per label set it meets) and adds to `pending`. Cells are
   * never dropped, so the label sets must be bounded, as any counter's.
   */
  cell(labels: Partial<Record<L, string | number>>): CountCell {
    const entry: Entry<L> = { pending: 0, child: this.#counter.labels(labels) };
    this.#entries.push(entry);
    return entry;
  }

  /** Adds every cell's pending count to the counter. */
  flush(): void {
    for (const entry of this.#entries) {
      if (entry.pending === 0) continue;
      entry.child.inc(entry.pending);
      entry.pending = 0;
    }
  }
}
