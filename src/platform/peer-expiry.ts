// When a verified peer stops speaking for its SPIFFE ID: at its certificate's notAfter. The connection checks at the
// handshake; a connection kept open outlives them unless someone acts at that moment.

/** Node's longest timer delay (2^31 − 1 ms); a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Runs `retire` `inMs` from now unless `connection` closes first. Nothing is scheduled for a NaN or a delay past
 * what a timer can hold (the per-request checks, where there are any, still apply).
 */
export function atPeerExpiry(
  connection: { once(event: 'close', listener: () => void): unknown },
  inMs: number,
  retire: () => void,
): NodeJS.Timeout | undefined {
  if (!(inMs <= MAX_TIMER_MS)) return undefined;
  const timer = setTimeout(retire, Math.max(0, inMs));
  timer.unref();
  connection.once('close', () => clearTimeout(timer));
  return timer;
}

/** A certificate's notAfter in ms from its `validTo` (OpenSSL's "Mon DD HH:MM:SS YYYY GMT"; validToDate needs Node 22). */
export function notAfterMs(validTo: string | undefined): number {
  return validTo === undefined ? Number.NaN : Date.parse(validTo);
}
