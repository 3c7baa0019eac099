// /metrics answers whoever reaches the admin port, and each rendering walks every series: a client asking in a loop
// over a few keep-alive connections got thousands of renderings a second and took that CPU from the data path. So
// renderings are paced: one starts at most every `intervalMs`, and never sooner after the last one ended than that one
// took (a rendering of 50 ms or more, a sidecar near its label bounds, would otherwise run back to back: at most half
// the time goes to rendering). The requests that arrive while one waits for its turn share it. Each answer is still
// rendered after its request arrived (never an older rendering served again): a scrape sees everything that happened
// before it asked, only later under a flood.

/** How long a rendering may run before the next one stops waiting for it (a collector that never answers). */
export const RENDER_WAIT_BOUND_MS = 10_000;

export class PacedRender<T> {
  readonly #render: () => Promise<T>;
  readonly #intervalMs: number;
  readonly #now: () => number;
  #lastStart = Number.NEGATIVE_INFINITY;
  /** When the next rendering may start, given how long the last one took. */
  #nextByCost = Number.NEGATIVE_INFINITY;
  /** The rendering under way, if any. */
  #running: Promise<T> | undefined;
  /** The rendering waiting for its turn, shared by everyone who asks meanwhile. */
  #next: Promise<T> | undefined;

  constructor(render: () => Promise<T>, intervalMs: number, now: () => number = () => performance.now()) {
    this.#render = render;
    this.#intervalMs = intervalMs;
    this.#now = now;
  }

  get(): Promise<T> {
    if (this.#next !== undefined) return this.#next;
    if (this.#running === undefined && this.#now() >= this.#earliestStart()) return this.#start();
    this.#next = this.#turn().then(() => {
      this.#next = undefined;
      return this.#start();
    });
    return this.#next;
  }

  #earliestStart(): number {
    return Math.max(this.#lastStart + this.#intervalMs, this.#nextByCost);
  }

  async #turn(): Promise<void> {
    // A rendering under way began before this caller asked: wait for it to end (within a bound), then for the pace.
    const running = this.#running;
    if (running !== undefined) {
      let bound: NodeJS.Timeout | undefined;
      await Promise.race([
        running.catch(() => undefined),
        new Promise((done) => {
          bound = setTimeout(done, RENDER_WAIT_BOUND_MS);
        }),
      ]);
      clearTimeout(bound);
      // A hung rendering no longer holds the next one back, nor the pace.
      if (this.#running === running) this.#running = undefined;
    }
    const wait = this.#earliestStart() - this.#now();
    if (wait > 0) await new Promise((done) => setTimeout(done, wait));
  }

  #start(): Promise<T> {
    const started = this.#now();
    this.#lastStart = started;
    const rendering = this.#render();
    this.#running = rendering;
    const ended = () => {
      // One that outlived RENDER_WAIT_BOUND_MS was already given up on: its cost sets no pace.
      if (this.#running !== rendering) return;
      this.#running = undefined;
      const now = this.#now();
      this.#nextByCost = now + (now - started);
    };
    rendering.then(ended, ended);
    return rendering;
  }
}
