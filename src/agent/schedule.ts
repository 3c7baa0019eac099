// When the agent acts next: renewal at about half of an SVID's lifetime, and capped exponential backoff after a
// failure. Pure: time and randomness come in as arguments, so every boundary is unit-tested without timers.
// Practice behind the numbers: SPIRE renews at half-life ±10 %, Istio at 50 %.

/** Renew between 45 % and 55 % of the lifetime (50 % ± 5 % jitter, so a fleet does not renew in lockstep). */
export const RENEWAL_FRACTION_MIN = 0.45;
export const RENEWAL_FRACTION_SPAN = 0.1;
/** No timer shorter than this: a CA that hands out near-expired SVIDs must not make the agent spin. */
export const MIN_DELAY_MS = 250;
/** While an SVID is still valid, never wait longer than this share of its remaining life between retries. */
export const REMAINING_LIFE_CAP = 0.25;

export interface SvidLifetime {
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** When the agent received the SVID. */
  readonly receivedAt: Date;
}

/**
 * Milliseconds from `now` until the SVID should be renewed. The CA back-dates NotBefore by up to a minute for clock
 * skew, so the lifetime that counts starts at the later of NotBefore and the time it was received;
 * otherwise a 5-second test SVID would look more than half used on arrival.
 * `jitterFraction` in [0, 1) picks the point between 45 % and 55 %.
 */
export function renewalDelay(lifetime: SvidLifetime, now: Date, jitterFraction: number): number {
  const notAfter = lifetime.notAfter.getTime();
  const start = Math.min(Math.max(lifetime.notBefore.getTime(), lifetime.receivedAt.getTime()), notAfter);
  const fraction = RENEWAL_FRACTION_MIN + RENEWAL_FRACTION_SPAN * clampUnit(jitterFraction);
  const renewAt = start + (notAfter - start) * fraction;
  return Math.max(MIN_DELAY_MS, Math.round(renewAt - now.getTime()));
}

/**
 * While a renewal is pending, the agent reads the wall clock at least this often. Timers run on the monotonic clock,
 * which does not count the time a host was suspended nor an NTP step, while an SVID's validity is wall-clock time: a
 * timer armed for half an SVID's life could otherwise fire after the SVID expired.
 */
export const WALL_CLOCK_CHECK_MS = 5_000;

/** The CA's `spiffe_refresh_hint` is followed within these bounds (`ca serve --bundle-refresh-hint`'s range). */
export const BUNDLE_REFRESH_HINT_MIN_MS = 1_000;
export const BUNDLE_REFRESH_HINT_MAX_MS = 24 * 60 * 60_000;

/**
 * The interval between bundle refreshes: the CA's hint once a fetch brought one (an operator sizes a fleet's CA by
 * it), else the agent's own. A hint out of range is clamped, so a CA can neither make agents poll it in a loop nor
 * stop them polling.
 */
export function bundleRefreshInterval(ownMs: number, hintMs: number | undefined): number {
  if (hintMs === undefined) return ownMs;
  return Math.min(Math.max(hintMs, BUNDLE_REFRESH_HINT_MIN_MS), BUNDLE_REFRESH_HINT_MAX_MS);
}

/** A later bundle refresh comes between 90 % and 100 % of the interval after the one before. */
export const BUNDLE_REFRESH_FRACTION_MIN = 0.9;

/**
 * Milliseconds until the next trust-bundle refresh. Never longer than `intervalMs`, the most a root rotation is told
 * to wait for (`ca rotate --root --activate`). The first one falls anywhere in the interval: a fleet started at once
 * (a cluster restart) would otherwise fetch the bundle in the same second, every interval, for good. Each later one
 * comes after 90–100 % of the interval, so the phases stay spread and never drift back into step.
 * `randomFraction` in [0, 1).
 */
export function bundleRefreshDelay(intervalMs: number, first: boolean, randomFraction: number): number {
  const fromFraction = first ? 0 : BUNDLE_REFRESH_FRACTION_MIN;
  const fraction = fromFraction + (1 - fromFraction) * clampUnit(randomFraction);
  return Math.max(MIN_DELAY_MS, Math.round(intervalMs * fraction));
}

export interface BackoffOptions {
  /** Delay cap of the first retry; doubles with each further attempt. */
  readonly baseMs: number;
  /** Absolute cap. */
  readonly maxMs: number;
  /** Floor (default MIN_DELAY_MS). */
  readonly floorMs?: number;
}

/**
 * Milliseconds to wait before retry number `attempt` (1 for the first retry). Exponential with "equal jitter"
 * (between half the cap and the cap), capped at `maxMs` and, while the current SVID is still valid, at a quarter
 * of its remaining life, so several retries fit before it expires even for seconds-long SVIDs (F01).
 * `remainingMs` is undefined when there is no SVID, and ≤ 0 once it expired: then only `maxMs` caps.
 */
export function retryDelay(
  attempt: number,
  remainingMs: number | undefined,
  options: BackoffOptions,
  randomFraction: number,
): number {
  const floorMs = options.floorMs ?? MIN_DELAY_MS;
  const exponent = Math.min(Math.max(attempt, 1) - 1, 30);
  let cap = Math.min(options.maxMs, options.baseMs * 2 ** exponent);
  if (remainingMs !== undefined && remainingMs > 0) cap = Math.min(cap, remainingMs * REMAINING_LIFE_CAP);
  const delay = cap / 2 + (cap / 2) * clampUnit(randomFraction);
  return Math.max(floorMs, Math.round(delay));
}

/**
 * The wait after a 429/503 that carried Retry-After: never before the CA asked (`retryAfterMs`), plus full jitter
 * over one more Retry-After so a fleet refused at the same moment does not come back at the same moment, and
 * never shorter than the agent's own backoff. `maxMs` caps it (an agent never waits longer than its backoff cap).
 */
export function retryAfterDelay(
  backoffMs: number,
  retryAfterMs: number,
  maxMs: number,
  randomFraction: number,
): number {
  const honoured = retryAfterMs + retryAfterMs * clampUnit(randomFraction);
  return Math.round(Math.min(maxMs, Math.max(backoffMs, honoured)));
}

function clampUnit(value: number): number {
  if (!Number.isFinite(value) || value < 0) return 0;
  return Math.min(value, 1);
}
