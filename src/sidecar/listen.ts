// Polls a condition until a deadline (drain). Bounded by design: every wait ends at its deadline.

const POLL_MS = 25;

/** Resolves when `done()` is true or at `deadline` (ms since epoch), whichever comes first. */
export async function waitUntil(deadline: number, done: () => boolean): Promise<boolean> {
  while (!done()) {
    const left = deadline - Date.now();
    if (left <= 0) return false;
    await new Promise((resolve) => setTimeout(resolve, Math.min(POLL_MS, left)));
  }
  return true;
}
