// The public listener's rapid-reset rule, per HTTP/2 session: streams the client closes before their response head,
// soon after opening them. Each such stream was already handed to the edge and usually forwarded into the mesh, so
// the service's app started work the client then cut. Pure counting: no clock (ages come in), no session.

/**
 * A session whose client closed this many streams within PREMATURE_LIFETIME_MS of opening them and before their
 * response head (RST_STREAM with any code), and more than half of all it opened, is closed (GOAWAY NO_ERROR: streams
 * in flight finish). nghttp2's own limit steps in only after about a thousand resets, and silently. The same rule as
 * the sidecar's inbound (listener-core.ts), so a browser that cancels a page's requests in a burst loses nothing.
 */
export const MAX_PREMATURE_RESETS = 100;
export const PREMATURE_LIFETIME_MS = 1_000;

export class PrematureResets {
  #streams = 0;
  #premature = 0;
  #tripped = false;

  /** A stream was opened. */
  opened(): void {
    this.#streams++;
  }

  /**
   * The client closed a stream before its response head, `ageMs` after it opened. True the one time the session
   * crosses the rule (then never again: one count, one log line and one GOAWAY per session).
   */
  closedBeforeHead(ageMs: number): boolean {
    if (this.#tripped || ageMs >= PREMATURE_LIFETIME_MS) return false;
    this.#premature++;
    if (this.#premature < MAX_PREMATURE_RESETS || this.#premature * 2 <= this.#streams) return false;
    this.#tripped = true;
    return true;
  }
}
