// When a verified peer stops speaking for its SPIFFE ID: at its certificate's notAfter. The connection checks at the
// handshake; a connection kept open outlives them unless someone acts at that moment.

/** Node's longest timer delay (2^31 − 1 ms); a longer one fires at once. */
/** The longest delay one Node timer holds (a longer one fires at once). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Runs `retire` `inMs` from now unless `connection` closes first. Nothing is scheduled for a NaN. A delay past what
 * one timer can hold (about 24.8 days: a long-lived client certificate at the external listener) is waited out in
 * turns of the longest delay, so a connection that stays open that long is still retired at the notAfter.
 */
export function atPeerExpiry(
  connection: { once(event: 'close', listener: () => void): unknown },
  inMs: number,
  retire: () => void,
  now: () => number = Date.now,
): void {
  if (Number.isNaN(inMs)) return;
  const endMs = now() + inMs;
  let timer: NodeJS.Timeout;
  const arm = (leftMs: number) => {
    timer = setTimeout(
      () => {
        const left = endMs - now();
        if (left > 0) arm(left);
        else retire();
      },
      Math.max(0, Math.min(leftMs, MAX_TIMER_MS)),
    );
    timer.unref();
  };
  arm(inMs);
  connection.once('close', () => clearTimeout(timer));
}
