// Passive health of one endpoint (outlier ejection): after EJECTION.consecutiveFailures connection attempts in a row
// fail, the endpoint leaves the balancing for an ejection time that doubles with each ejection (bounded); when it runs
// out, one request may try it (the probe): a successful connection brings it back, a failed one ejects it again, and
// a probe with no outcome after EJECTION.probeTimeoutMs lets the next request probe.
// Pure state transitions over a mutable record owned by the endpoint.

export const EJECTION = Object.freeze({
  consecutiveFailures: 3,
  baseMs: 1_000,
  maxMs: 30_000,
  /**
   * A probe with no outcome after this long no longer holds the endpoint out: the request that probed may have ridden
   * a connection kept from before (nothing to succeed or fail), or ended in a way that says nothing of the endpoint.
   */
  probeTimeoutMs: 30_000,
});

export interface EjectionState {
  failures: number;
  /** Times ejected in a row (resets on a successful connection); 0 = not ejected. */
  ejections: number;
  /** performance.now() until which the endpoint is out; a probe is allowed after it. */
  ejectedUntil: number;
  /** A probe connection is under way. */
  probing: boolean;
  /** performance.now() when the probe started. */
  probeStartedAt: number;
}

export function newEjectionState(): EjectionState {
  return { failures: 0, ejections: 0, ejectedUntil: 0, probing: false, probeStartedAt: 0 };
}

/**
 * True when the endpoint may take a request now: not ejected, or ejected with its probe due and not started (or
 * started longer than EJECTION.probeTimeoutMs ago without an outcome).
 */
export function isAvailable(state: EjectionState, now: number): boolean {
  if (state.ejections === 0) return true;
  if (now < state.ejectedUntil) return false;
  return !state.probing || now - state.probeStartedAt >= EJECTION.probeTimeoutMs;
}

/** The balancer chose an ejected endpoint whose probe was due: only this one request tries it. */
export function startProbe(state: EjectionState, now: number): void {
  if (state.ejections === 0) return;
  state.probing = true;
  state.probeStartedAt = now;
}

/** Records a failed connection attempt; returns true when this failure ejects the endpoint. */
export function connectFailed(state: EjectionState, now: number): boolean {
  state.failures += 1;
  const probeFailed = state.probing;
  state.probing = false;
  if (!probeFailed && state.failures < EJECTION.consecutiveFailures) return false;
  if (!probeFailed && state.ejections > 0) return false; // already out (a connect that started before)
  const exponent = Math.min(state.ejections, 10);
  state.ejections += 1;
  state.ejectedUntil = now + Math.min(EJECTION.maxMs, EJECTION.baseMs * 2 ** exponent);
  return true;
}

export function connectSucceeded(state: EjectionState): void {
  state.failures = 0;
  state.ejections = 0;
  state.ejectedUntil = 0;
  state.probing = false;
}
