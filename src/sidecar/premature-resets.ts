// The rapid-reset rule of an HTTP/2 server session (the sidecar's inbound and external listeners, the gateway's
// public listener): streams the client closes before their response head, soon after opening them. Each such stream
// was already handed on (an app exchange started and cut, a request forwarded into the mesh), and nghttp2's own limit
// lets a session churn about a thousand of them before it steps in, silently. Pure counting: no clock (ages come
// in), no session.

/**
 * A session whose client closed this many streams within PREMATURE_LIFETIME_MS of opening them and before their
 * response head (RST_STREAM with any code, NO_ERROR included), and more than half of all it opened, is closed. The
 * caller closes it gracefully (GOAWAY NO_ERROR naming the last stream taken): streams in flight finish and later ones
 * are refused, which a peer sidecar retries on a new session, so a client whose requests are cancelled in a burst (a
 * browser leaving a page) pays a reconnect, nothing more. A non-zero GOAWAY code would make node:http2 clients fail
 * every stream in flight.
 */
export const MAX_PREMATURE_RESETS = 100;
export const PREMATURE_LIFETIME_MS = 1_000;

export class PrematureResets {
  #streams = 0;
  #premature = 0;
  #tripped = false;

  /** Streams the session opened. */
  get streams(): number {
    return this.#streams;
  }

  /** Streams closed before their head, young. */
  get premature(): number {
    return this.#premature;
  }

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
