// /metrics answers whoever reaches the admin port, and each rendering walks every series: a client asking in a loop
// over a few keep-alive connections got thousands of renderings a second and took that CPU from the data path. So
// renderings are paced: one starts at most every `intervalMs`, and the requests that arrive while one waits for its
// turn share it. Each answer is still rendered after its request arrived (never an older rendering served again):
// a scrape sees everything that happened before it asked, only later under a flood.

export class PacedRender<T> {
  readonly #render: () => Promise<T>;
  readonly #intervalMs: number;
  readonly #now: () => number;
  #lastStart = Number.NEGATIVE_INFINITY;
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
    if (this.#running === undefined && this.#now() - this.#lastStart >= this.#intervalMs) return this.#start();
    this.#next = this.#turn().then(() => {
      this.#next = undefined;
      return this.#start();
    });
    return this.#next;
  }

  async #turn(): Promise<void> {
    // A rendering under way began before this caller asked: wait for it to end, then for the interval.
    await this.#running?.catch(() => undefined);
    const wait = this.#lastStart + this.#intervalMs - this.#now();
    if (wait > 0) await new Promise((done) => setTimeout(done, wait));
  }

  #start(): Promise<T> {
    this.#lastStart = this.#now();
    const rendering = this.#render();
    this.#running = rendering;
    const ended = () => {
      if (this.#running === rendering) this.#running = undefined;
    };
    rendering.then(ended, ended);
    return rendering;
  }
}
