// Durations as people type them in flags and config files (`90s`, `10m`, `1h`, `24h`, `500ms`, `7d`). One parser
// for the whole project, so the CLI and the sidecar config accept exactly the same spellings.
import { MeshauthError } from '../errors/index.js';

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(\d{1,9})(ms|s|m|h|d)$/;

/**
 * The longest duration a setting that becomes a Node timer may take (the sidecar's and the gateway's timeouts):
 * Node holds a delay in a signed 32-bit integer, and a longer one (past ~24.8 days) fires after 1 ms with only a
 * TimeoutOverflowWarning, so `outbound.timeout: 25d` failed every request at once. 24 days leaves room for the
 * margins code adds on top (the inbound's stream idle timer is appTimeout + 1 s).
 */
export const MAX_TIMER_DURATION_MS = 24 * UNIT_MS.d;

/**
 * True unless `text` is a duration longer than MAX_TIMER_DURATION_MS (text that is no duration at all is left to
 * the format check, so it gets one message, not two).
 */
export function withinTimerRange(text: string): boolean {
  try {
    return parseDuration(text) <= MAX_TIMER_DURATION_MS;
  } catch {
    return true;
  }
}

/** The schema message of withinTimerRange. */
export const TIMER_RANGE_MESSAGE =
  'expected at most 24d: a longer timeout or drain would not wait at all (Node timers fire after 1 ms past ~24.8 days)';

/** Parses `<integer><unit>` (units ms, s, m, h, d) to milliseconds. Throws MESHAUTH_ERR_USAGE otherwise. */
export function parseDuration(text: string): number {
  const match = DURATION.exec(text.trim());
  if (match === null) {
    throw new MeshauthError(
      'MESHAUTH_ERR_USAGE',
      `invalid duration ${JSON.stringify(text.slice(0, 40))}: expected a whole number and a unit (ms, s, m, h, d), e.g. 90s, 10m, 1h`,
      { reason: 'bad_duration' },
    );
  }
  const [, amount, unit] = match as unknown as [string, string, keyof typeof UNIT_MS];
  return Number(amount) * UNIT_MS[unit];
}

/** The shortest exact spelling of a duration (`3600000` → `1h`, `90000` → `90s`), for messages. */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    if (unit === 'd' && ms <= UNIT_MS.d) continue; // `24h` reads better than `1d` for SVID lifetimes
    if (ms >= UNIT_MS[unit] && ms % UNIT_MS[unit] === 0) return `${ms / UNIT_MS[unit]}${unit}`;
  }
  return `${ms}ms`;
}

/**
 * `text` (a flag's value) in milliseconds, checked min ≤ ms ≤ max. MESHAUTH_ERR_USAGE when it is no duration,
 * MESHAUTH_ERR_TTL_OUT_OF_RANGE naming the bounds otherwise, with the value as typed: spelt back from milliseconds,
 * `--ttl 0s` read "--ttl 0ms", a value the user never wrote.
 */
export function durationInRange(what: string, text: string, min: number, max: number): number {
  const ms = parseDuration(text);
  if (ms < min || ms > max) {
    throw new MeshauthError(
      'MESHAUTH_ERR_TTL_OUT_OF_RANGE',
      `${what} ${text.trim()} is out of range: must be between ${formatDuration(min)} and ${formatDuration(max)}`,
      { reason: 'ttl_out_of_range' },
    );
  }
  return ms;
}
