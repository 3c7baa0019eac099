// Stalls of the whole machine, seen from the soak's load loop: it turns every few milliseconds, so a gap of a second
// or more between two turns means every process stood still (a paused VM, a starved host), not the mesh.

/** A gap this long between two turns of the load loop (normally ≤ 10 ms apart) is reported as a stall. */
export const STALL_REPORT_MS = 1_000;

export interface Stall {
  /** Seconds since the start of the load when the loop ran again. */
  readonly atSeconds: number;
  readonly seconds: number;
}

export class StallWatch {
  readonly stalls: Stall[] = [];
  readonly #started: number;
  readonly #durationMs: number;
  #lastTurn: number;

  constructor(started: number, durationMs: number) {
    this.#started = started;
    this.#durationMs = durationMs;
    this.#lastTurn = started;
  }

  /**
   * Whether the load goes on at `now`, the loop's condition. The gap since the previous turn is judged first, also on
   * the turn that ends the loop: a stall that outlasts the run's end is the one a resumed machine ends it with, its
   * expired SVIDs failing the requests still in flight, and it must explain them.
   */
  running(now: number): boolean {
    if (now - this.#lastTurn >= STALL_REPORT_MS) {
      this.stalls.push({ atSeconds: (now - this.#started) / 1000, seconds: (now - this.#lastTurn) / 1000 });
    }
    this.#lastTurn = now;
    return now - this.#started < this.#durationMs;
  }
}
