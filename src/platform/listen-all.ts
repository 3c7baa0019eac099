// Binding a process's listeners together at start (the sidecar's and the gateway's). Settles only once every bind
// has: a refused address then unwinds the start with no other bind under way (Promise.all unwound mid-bind and left
// it to net.Server.close() to cancel the bind it overtook), and an operator whose two addresses are both taken learns
// of both at once, not of the second only after freeing the first. Starts nothing itself.
import { isMeshauthError, MeshauthError } from '../errors/index.js';

/**
 * What each bind gave (its port, say), in order. When binds fail: the one failure, or one MESHAUTH_ERR_LISTEN naming
 * each when every failure is a refused address; otherwise the first failure, as it is.
 */
export async function listenAll<T extends readonly unknown[]>(
  binds: readonly [...T],
): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const settled = await Promise.allSettled(binds);
  const failures = settled.flatMap((result) => (result.status === 'rejected' ? [result.reason as unknown] : []));
  if (failures.length === 0) {
    return settled.map((result) => (result as PromiseFulfilledResult<unknown>).value) as {
      -readonly [K in keyof T]: Awaited<T[K]>;
    };
  }
  throw oneFailure(failures);
}

function oneFailure(failures: readonly unknown[]): unknown {
  const [first] = failures;
  if (failures.length === 1 || !failures.every((failure) => isMeshauthError(failure, 'MESHAUTH_ERR_LISTEN'))) {
    return first;
  }
  const refused = failures as readonly MeshauthError[];
  // Each message names its setting, address and errno already: joined, they are one line for the operator.
  return new MeshauthError('MESHAUTH_ERR_LISTEN', refused.map((error) => error.message).join('; '), {
    reason: 'listen_failed',
    detail: { keys: refused.map((error) => error.detail?.key), errnos: refused.map((error) => error.detail?.errno) },
    cause: new AggregateError(refused, 'several listeners could not bind'),
  });
}
