// `ca token create` takes the CA directory's lock, as `ca init --force`, `ca rotate` and `ca issue` do. Before, it
// took none: `ca init --force` removes tokens/ under that lock, so a token created during a forced re-init was printed
// and then deleted with the old CA, and its first use answered token_unknown. Now it waits for the holder (one stderr
// line), writes its record into the CA that holder leaves, and gives up as the other commands do
// (MESHAUTH_ERR_CA_UNAVAILABLE, reason directory_locked, exit 1) without printing a token.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { consumeJoinToken, initCa } from '../../../src/ca/index.js';
import { acquireRotationLock, ROTATION_LOCK_FILE } from '../../../src/ca/rotation-lock.js';
import { buildProgram } from '../../../src/cli/program.js';
import { exitCodeFor } from '../../../src/cli/run.js';
import { MeshauthError } from '../../../src/errors/index.js';
import { makeCaDir } from '../../helpers/ca-dir.js';
import { waitFor } from '../../helpers/wait.js';

/**
 * The lock's give-up time, shortened for the refusal case (65 s in the product); and what the next taker of the lock
 * runs first while holding it (once), to act while a `ca init --force` holds it.
 */
const lockWait = vi.hoisted(() => ({
  timeoutMs: undefined as number | undefined,
  whileHeld: undefined as (() => Promise<void>) | undefined,
}));

vi.mock('../../../src/ca/rotation-lock.js', async (original) => {
  const lock = await original<typeof import('../../../src/ca/rotation-lock.js')>();
  return {
    ...lock,
    withRotationLock: <T>(
      dir: string,
      action: () => Promise<T>,
      options: Parameters<typeof lock.withRotationLock>[2],
    ) =>
      lock.withRotationLock(
        dir,
        async () => {
          const whileHeld = lockWait.whileHeld;
          lockWait.whileHeld = undefined;
          await whileHeld?.();
          return action();
        },
        {
          ...options,
          ...(lockWait.timeoutMs === undefined ? {} : { timeoutMs: lockWait.timeoutMs }),
        },
      ),
  };
});

const ID = 'spiffe://example.org/ns/shop/sa/web';

let ca: Awaited<ReturnType<typeof makeCaDir>>;
let stdout: string[];
let stderr: string[];

beforeEach(async () => {
  ca = await makeCaDir();
  stdout = [];
  stderr = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout.push(String(chunk));
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr.push(String(chunk));
    return true;
  });
});
afterEach(() => {
  lockWait.timeoutMs = undefined;
  lockWait.whileHeld = undefined;
  vi.restoreAllMocks();
  ca.cleanup();
});

function tokenCreate(): Promise<unknown> {
  return buildProgram().parseAsync(['ca', 'token', 'create', '--id', ID, '--dir', ca.dir], { from: 'user' });
}

/** The token records in tokens/ (not tokens/used/). */
function records(): string[] {
  return readdirSync(join(ca.dir, 'tokens')).filter((name) => name.endsWith('.json'));
}

function printedToken(): string {
  const [token, ...more] = stdout.join('').split('\n').filter(Boolean);
  expect(more).toEqual([]);
  return token ?? '';
}

describe('ca token create and the CA directory lock', () => {
  it('ok/with the directory free: prints a token the CA knows, and leaves no lock behind', async () => {
    await tokenCreate();
    expect((await consumeJoinToken(ca.dir, printedToken(), new Date())).toString()).toBe(ID);
    expect(existsSync(join(ca.dir, ROTATION_LOCK_FILE))).toBe(false);
    expect(stderr).toEqual([]);
  });

  it('ok/during a `ca init --force`: waits for it, then the token printed is known to the new CA', async () => {
    let creation: Promise<unknown> | undefined;
    // initCa takes the directory's lock to replace the CA; while it holds it (before tokens/ goes with the old CA),
    // a token is asked for.
    lockWait.whileHeld = async () => {
      creation = tokenCreate();
      await waitFor('the wait line', () => stderr.find((line) => line.includes('waiting for another process')));
      expect(stdout).toEqual([]);
      expect(records()).toEqual([]);
    };
    await initCa({ dir: ca.dir, trustDomain: 'example.org', force: true });
    expect(creation).toBeDefined();
    await creation;
    expect(records()).toHaveLength(1);
    expect((await consumeJoinToken(ca.dir, printedToken(), new Date())).toString()).toBe(ID);
  });

  it('fail/the lock held past the wait: directory_locked, exit 1, no token printed or stored', async () => {
    lockWait.timeoutMs = 300;
    const held = await acquireRotationLock(join(ca.dir, ROTATION_LOCK_FILE));
    expect(held).toBeDefined();
    let error: unknown;
    try {
      error = await tokenCreate().then(
        () => undefined,
        (e: unknown) => e,
      );
    } finally {
      await held?.release();
    }
    expect(error).toBeInstanceOf(MeshauthError);
    expect(error).toMatchObject({ code: 'MESHAUTH_ERR_CA_UNAVAILABLE', reason: 'directory_locked' });
    expect((error as MeshauthError).message).toContain(ROTATION_LOCK_FILE);
    expect(exitCodeFor(error)).toBe(1);
    expect(stdout).toEqual([]);
    expect(records()).toEqual([]);
  });
});
