// Waiting on a condition in tests: poll, never a fixed sleep, always bounded. The one poll loop the helpers share
// (raw-app's eventually and tcp-client's until are this file's, re-exported where callers already import them).

/** Polls `check` every `intervalMs` until it returns a truthy value; undefined once `timeoutMs` passed. */
async function poll<T>(
  check: () => T | Promise<T>,
  timeoutMs: number,
  intervalMs: number,
): Promise<NonNullable<T> | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) return undefined;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Polls `check` (every 50 ms by default) until it returns a truthy value; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  timeoutMs = 5_000,
  intervalMs = 50,
): Promise<NonNullable<T>> {
  const value = await poll(check, timeoutMs, intervalMs);
  if (value === undefined) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  return value;
}

/** Polls `condition` every 10 ms until true; throws after `timeoutMs` naming `what`. */
export async function until(what: string, condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  await waitFor(what, condition, timeoutMs, 10);
}

/** Polls `done` every 10 ms until it is true or `timeoutMs` passed; returns whether it became true. */
export async function eventually(done: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<boolean> {
  return (await poll(done, timeoutMs, 10)) !== undefined;
}
