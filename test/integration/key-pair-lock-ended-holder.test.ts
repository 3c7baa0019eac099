// A key pair's lock whose holder has ended, with real holders: child processes that take the lock through the built
// module and are SIGKILLed by PID. Their lock, still fresh (a minute from stale), is broken at once by the next taker,
// which says whose it was; a holder that still runs is never broken, however long another waits; a holder killed
// while another waits frees it then; of several processes that find one ended holder's lock at the same moment,
// exactly one breaks it and their actions never overlap; and a lock whose holder this process cannot judge (no
// identity in it, another boot or PID namespace) is left to go stale.
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { acquireRotationLock, type EndedHolder, STALE_LOCK_MS } from '../../src/ca/rotation-lock.js';
import { keyPairLockPath, withKeyPairLock } from '../../src/cli/key-pair-lock.js';
import { holdKeyPairLock, keyPairLockTaker, type LockHolder } from '../helpers/key-pair-lock-child.js';
import { assertBuilt, ROOT } from '../helpers/meshauth-cli.js';
import { waitFor } from '../helpers/wait.js';

const ROUNDS = 3;
const TAKERS = 4;
const BREAKERS = 8;

let dir: string;
let key: string;
let lock: string;
let cleanups: (() => Promise<void> | void)[];

beforeAll(() => assertBuilt(['src/cli', 'src/ca', 'src/platform']));
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'meshauth-ended-holder-'));
  key = join(dir, 'web.key');
  lock = keyPairLockPath(key);
  cleanups = [];
});
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  rmSync(dir, { recursive: true, force: true });
});

/** A child that took the lock, SIGKILLed by its PID: its lock stays, fresh, naming the child's process identity. */
async function killedHolder(): Promise<LockHolder> {
  const holder = await holdKeyPairLock(key, cleanups);
  process.kill(holder.pid, 'SIGKILL');
  expect(await holder.exited).toEqual({ code: null, signal: 'SIGKILL' });
  expect(JSON.parse(lockLines()[1] ?? '')).toMatchObject({ pid: holder.pid, start: expect.any(String) });
  expect(Date.now() - statSync(lock).mtimeMs).toBeLessThan(STALE_LOCK_MS);
  return holder;
}

/** The lock's lines: token, host and pid; then its holder's process identity. */
function lockLines(): string[] {
  return readFileSync(lock, 'utf8').split('\n');
}

describe.runIf(process.platform === 'linux')('a key pair lock whose holder ended', () => {
  it('ok/a holder killed with SIGKILL: the next taker breaks its fresh lock at once, never waiting, and says so', async () => {
    const holder = await killedHolder();
    const holderLock = readFileSync(lock, 'utf8').trim();
    const waits: string[] = [];
    const ended: EndedHolder[] = [];
    const result = await withKeyPairLock(
      key,
      async (held) => {
        await held.assertHeld();
        return readFileSync(lock, 'utf8').trim();
      },
      {
        onWait: (who) => waits.push(who),
        onHolderEnded: (who) => {
          ended.push(who);
        },
      },
    );
    expect(waits).toEqual([]);
    expect(ended).toEqual([{ holderPid: holder.pid, holderHost: hostname(), lockAgeMs: expect.any(Number) }]);
    expect(ended[0]?.lockAgeMs).toBeLessThan(STALE_LOCK_MS);
    // The action ran under a lock of its own, not the dead holder's.
    expect(result).not.toBe(holderLock);
    expect(existsSync(lock)).toBe(false);
  });

  it('fail/a holder that still runs is never broken: the taker looks several times, then times out (key_pair_locked)', async () => {
    const holder = await holdKeyPairLock(key, cleanups);
    const holderLock = readFileSync(lock, 'utf8');
    const ended: EndedHolder[] = [];
    let ran = false;
    const error = await withKeyPairLock(
      key,
      async () => {
        ran = true;
      },
      // Past many looks at the holder (one every 100 ms).
      { timeoutMs: 3_500, onHolderEnded: (who) => void ended.push(who) },
    ).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'MESHAUTH_ERR_FILE_UNWRITABLE', reason: 'key_pair_locked' });
    expect(ran).toBe(false);
    expect(ended).toEqual([]);
    expect(holder.alive()).toBe(true);
    expect(readFileSync(lock, 'utf8')).toBe(holderLock);
    holder.finish();
    expect(await holder.exited).toEqual({ code: 0, signal: null });
    expect(holder.output()).toContain('released\n');
    expect(existsSync(lock)).toBe(false);
  });

  it('ok/a holder killed while another process waits for it: the waiter breaks the lock then, and runs', async () => {
    const holder = await holdKeyPairLock(key, cleanups);
    const waits: string[] = [];
    const ended: EndedHolder[] = [];
    const waiter = withKeyPairLock(key, async () => 'ran', {
      onWait: (who) => waits.push(who),
      onHolderEnded: (who) => void ended.push(who),
    });
    await waitFor('the waiter to wait', () => waits.length === 1);
    expect(ended).toEqual([]);
    process.kill(holder.pid, 'SIGKILL');
    await holder.exited;
    expect(await waiter).toBe('ran');
    expect(ended.map((who) => who.holderPid)).toEqual([holder.pid]);
    expect(ended[0]?.lockAgeMs).toBeLessThan(STALE_LOCK_MS);
  });

  it(`ok/${TAKERS} processes find one ended holder's lock at once: one breaks it, their actions never overlap, ${ROUNDS} rounds`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const holder = await killedHolder();
      const gate = join(dir, `gate-${round}`);
      const log = join(dir, `turns-${round}`);
      writeFileSync(log, '');
      const takers = await Promise.all(
        Array.from({ length: TAKERS }, () => keyPairLockTaker(key, gate, log, cleanups)),
      );
      writeFileSync(gate, '');
      const exits = await Promise.all(takers.map((taker) => taker.exited));
      expect(exits, takers.map((taker) => taker.output()).join('\n')).toEqual(
        takers.map(() => ({ code: 0, signal: null })),
      );
      const breaks = takers.flatMap((taker) => taker.logs()).filter((line) => line.event === 'key_pair_lock_broken');
      expect(breaks, `round ${round}`).toHaveLength(1);
      expect(breaks[0]).toMatchObject({
        level: 'warn',
        component: 'cli',
        reason: 'holder_ended',
        lock,
        key,
        holderPid: holder.pid,
        holderHost: hostname(),
      });
      expect(breaks[0]?.lockAgeMs).toBeLessThan(STALE_LOCK_MS);
      // Every turn is an enter and the exit of the same process before the next enter.
      const turns = readFileSync(log, 'utf8').trim().split('\n');
      expect(turns).toHaveLength(2 * TAKERS);
      const pids = new Set<string>();
      for (let at = 0; at < turns.length; at += 2) {
        const pid = turns[at]?.replace(/^enter /, '');
        expect([turns[at], turns[at + 1]], `round ${round}`).toEqual([`enter ${pid}`, `exit ${pid}`]);
        pids.add(pid ?? '');
      }
      expect(pids.size).toBe(TAKERS);
      expect(existsSync(lock)).toBe(false);
    }
  }, 60_000);

  it(`ok/${BREAKERS} acquirers of one ended holder's lock in one process: one breaks and takes it, ${ROUNDS} rounds`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const holder = await killedHolder();
      const ended: EndedHolder[] = [];
      const locks = await Promise.all(
        Array.from({ length: BREAKERS }, () =>
          acquireRotationLock(lock, { onHolderEnded: (who) => void ended.push(who) }),
        ),
      );
      const taken = locks.filter((taker) => taker !== undefined);
      expect(taken, `round ${round}`).toHaveLength(1);
      expect(ended.map((who) => who.holderPid)).toEqual([holder.pid]);
      expect(existsSync(`${lock}.break`)).toBe(false);
      expect(await taken[0]?.release()).toBe('released');
      expect(existsSync(lock)).toBe(false);
    }
  }, 30_000);

  it('ok/a lock that names no process identity (another host without /proc, an older meshauth) goes stale, as before', async () => {
    await killedHolder();
    const [line] = lockLines();
    rmSync(lock);
    writeFileSync(lock, `${line}\n`);
    expect(await acquireRotationLock(lock)).toBeUndefined();
    expect(readFileSync(lock, 'utf8')).toBe(`${line}\n`);
  });

  it.each([
    ['boot', 'another machine or boot'],
    ['pidNamespace', 'another PID namespace (a container beside this one)'],
  ])('ok/a lock whose holder ran in %s (%s) is not judged: left to go stale', async (field) => {
    await killedHolder();
    const [line, identity] = lockLines();
    const elsewhere = `${line}\n${JSON.stringify({ ...JSON.parse(identity ?? ''), [field]: 'elsewhere' })}\n`;
    rmSync(lock);
    writeFileSync(lock, elsewhere);
    expect(await acquireRotationLock(lock)).toBeUndefined();
    expect(readFileSync(lock, 'utf8')).toBe(elsewhere);
  });

  it.runIf(process.getuid?.() === 0)(
    "ok/another user's lock this user may not read (0600) is not judged: waited for, never an error",
    async () => {
      await killedHolder();
      chmodSync(dir, 0o777);
      const module = pathToFileURL(join(ROOT, 'dist/src/ca/rotation-lock.js')).href;
      const taker = spawnSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `const { acquireRotationLock } = await import(process.argv[1]);
           process.stdout.write((await acquireRotationLock(process.argv[2])) === undefined ? 'waits' : 'took it');`,
          '--',
          module,
          lock,
        ],
        { uid: 65534, gid: 65534, encoding: 'utf8', timeout: 15_000 },
      );
      expect(taker.stdout, taker.stderr).toBe('waits');
      expect(existsSync(lock)).toBe(true);
    },
  );

  it.runIf(process.getuid?.() === 0)(
    'ok/a holder that runs in another time namespace (its start time reads shifted here) is never judged ended',
    async () => {
      const holder = await holdKeyPairLock(key, cleanups, ['unshare', '--time', '--boottime', '1000']);
      const held = readFileSync(lock, 'utf8');
      const identity = JSON.parse(held.split('\n')[1] ?? '');
      expect(identity).toMatchObject({ timeNamespace: expect.stringMatching(/^time:/) });
      // Else the holder is in this one and the case tests nothing.
      expect(identity.timeNamespace).not.toBe(readlinkSync('/proc/self/ns/time'));
      const ended: EndedHolder[] = [];
      expect(await acquireRotationLock(lock, { onHolderEnded: (who) => void ended.push(who) })).toBeUndefined();
      expect(ended).toEqual([]);
      expect(readFileSync(lock, 'utf8')).toBe(held);
      holder.finish();
      expect(await holder.exited).toEqual({ code: 0, signal: null });
    },
  );

  it('ok/a lock whose holder identity is garbage is not judged: left to go stale', async () => {
    await killedHolder();
    const [line] = lockLines();
    const self = JSON.parse(lockLines()[1] ?? '');
    const garbage = [
      '{',
      '[]',
      '{"pid":"1"}',
      `{"boot":"b","pidNamespace":"n","pid":1e400,"start":"1"}`,
      // This machine's boot and namespaces, and a pid that names no one process.
      ...[-1, 0, 1.5].map((pid) => JSON.stringify({ ...self, pid })),
      JSON.stringify({ ...self, timeNamespace: 7 }),
    ];
    for (const identity of garbage) {
      rmSync(lock);
      writeFileSync(lock, `${line}\n${identity}\n`);
      expect(await acquireRotationLock(lock), identity).toBeUndefined();
    }
  });
});
