// listenAll: every bind settles before the start is failed, and refused addresses are named together. Pure: the binds
// are promises settled by the test, in an order it chooses.
import { describe, expect, it } from 'vitest';
import { isMeshauthError, MeshauthError } from '../../../src/errors/index.js';
import { listenAll } from '../../../src/platform/listen-all.js';

const refused = (key: string, port: number) =>
  new MeshauthError('MESHAUTH_ERR_LISTEN', `${key}: cannot listen on 127.0.0.1:${port}: EADDRINUSE`, {
    reason: 'listen_failed',
    detail: { key, errno: 'EADDRINUSE' },
  });

/** A bind the test settles later. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve: (value: T) => void = () => undefined;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe('listenAll', () => {
  it('ok/the ports in the order of the binds', async () => {
    await expect(listenAll([Promise.resolve(8080), Promise.resolve(15020)])).resolves.toEqual([8080, 15020]);
  });

  it('fail/one refused bind fails the start only once the other bind has settled', async () => {
    const admin = deferred<number>();
    let settled = false;
    const all = listenAll([Promise.reject(refused('listen', 1)), admin.promise]).finally(() => {
      settled = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    admin.resolve(15020);
    const error = await all.catch((e: unknown) => e);
    expect(settled).toBe(true);
    expect(isMeshauthError(error, 'MESHAUTH_ERR_LISTEN')).toBe(true);
    expect((error as Error).message).toBe('listen: cannot listen on 127.0.0.1:1: EADDRINUSE');
  });

  it('fail/two refused addresses → one MESHAUTH_ERR_LISTEN naming both settings', async () => {
    const error = await listenAll([
      Promise.reject(refused('listen', 1)),
      Promise.resolve(0),
      Promise.reject(refused('admin.listen', 2)),
    ]).catch((e: unknown) => e);
    expect(isMeshauthError(error, 'MESHAUTH_ERR_LISTEN')).toBe(true);
    expect((error as Error).message).toBe(
      'listen: cannot listen on 127.0.0.1:1: EADDRINUSE; admin.listen: cannot listen on 127.0.0.1:2: EADDRINUSE',
    );
    expect((error as MeshauthError).detail).toEqual({
      keys: ['listen', 'admin.listen'],
      errnos: ['EADDRINUSE', 'EADDRINUSE'],
    });
  });

  it('fail/a failure that is no refused address is thrown as it is, first of all', async () => {
    const broken = new Error('certificate file unreadable');
    const error = await listenAll([Promise.reject(broken), Promise.reject(refused('admin.listen', 2))]).catch(
      (e: unknown) => e,
    );
    expect(error).toBe(broken);
  });
});
