// A `cert renew` killed with SIGKILL while it holds the pair's lock (here: waiting on a CA that accepts connections
// and never answers, as a slow CA keeps a renewal) costs the next renewal nothing. Its lock stays behind, fresh, and
// the next `cert renew` used to wait about a minute for it to go stale; now it breaks the lock at once, says so in
// one structured line on stderr naming the killed process, and renews. A renewal already waiting when the holder is
// killed goes on then too.
import { spawn } from 'node:child_process';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { STALE_LOCK_MS } from '../../src/ca/rotation-lock.js';
import { type CliProcess, capturedProcess, waitForCli } from '../helpers/cli-process.js';
import { assertBuilt, MAIN, meshauth, type RunningCli, serveCa } from '../helpers/meshauth-cli.js';

const ID = 'spiffe://example.org/ns/shop/sa/web';
const WAITING = 'meshauth: waiting for another process writing web.key and its certificate';
let cwd: string;
let serve: RunningCli;
let url: string;
/** A CA address that takes connections and never answers: a renewal dialling it holds the lock until killed. */
let silent: Server;
let silentUrl: string;
const connections: Socket[] = [];
let cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  assertBuilt(['src/cli', 'src/ca', 'src/agent', 'src/platform']);
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-renew-killed-'));
  expect((await meshauth(['ca', 'init', '--trust-domain', 'example.org'], { cwd })).code).toBe(0);
  ({ serve, url } = await serveCa(cwd));
  silent = createServer((socket) => {
    connections.push(socket);
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const address = silent.address();
  silentUrl = `https://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
});
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});
afterAll(async () => {
  for (const socket of connections) socket.destroy();
  if (silent !== undefined) await new Promise((resolve) => silent.close(resolve));
  await serve?.stop();
  if (cwd !== undefined) rmSync(cwd, { recursive: true, force: true });
});

const renewArgs = (caUrl: string) => [
  'cert',
  'renew',
  '--ca-url',
  caUrl,
  '--bundle',
  'certs/bundle.pem',
  '--cert',
  'web.crt',
  '--key',
  'web.key',
];

function renew(caUrl: string): CliProcess {
  const child = spawn(process.execPath, [MAIN, ...renewArgs(caUrl)], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  return capturedProcess(child, cleanups);
}

/** A renewal holding the pair's lock, stuck on the silent CA. */
async function stuckRenewal(): Promise<CliProcess & { pid: number }> {
  const dialled = connections.length;
  const stuck = renew(silentUrl);
  await waitForCli(stuck, 'the renewal to dial the silent CA', () => connections.length > dialled, 15_000);
  expect(existsSync(join(cwd, 'web.key.lock'))).toBe(true);
  return Object.assign(stuck, { pid: stuck.child.pid as number });
}

function keyMatchesLeaf(): boolean {
  const key = createPublicKey(createPrivateKey(readFileSync(join(cwd, 'web.key'), 'utf8')));
  const leaf = new X509Certificate(readFileSync(join(cwd, 'web.crt'), 'utf8'));
  return key.export({ type: 'spki', format: 'der' }).equals(leaf.publicKey.export({ type: 'spki', format: 'der' }));
}

/** The structured lines on stderr saying a lock was broken. */
const breaks = (cli: CliProcess) => cli.logs().filter((line) => line.event === 'key_pair_lock_broken');

describe.runIf(process.platform === 'linux')('cert renew after a renewal killed holding the lock', () => {
  it('ok/the next renewal breaks the killed one’s still-fresh lock at once, says so, and renews', async () => {
    expect((await meshauth(['ca', 'issue', '--id', ID, '--out', 'web'], { cwd })).code).toBe(0);
    const before = readFileSync(join(cwd, 'web.crt'), 'utf8');
    const killed = await stuckRenewal();
    process.kill(killed.pid, 'SIGKILL');
    expect(await killed.exited).toEqual({ code: null, signal: 'SIGKILL' });
    // Left behind, and a minute from stale: before, the next run waited it out.
    expect(Date.now() - statSync(join(cwd, 'web.key.lock')).mtimeMs).toBeLessThan(STALE_LOCK_MS);

    const next = renew(url);
    const exit = await next.exited;
    expect(exit, next.output()).toEqual({ code: 0, signal: null });
    expect(next.output()).not.toContain(WAITING);
    expect(breaks(next)).toEqual([
      expect.objectContaining({
        level: 'warn',
        component: 'cli',
        reason: 'holder_ended',
        lock: 'web.key.lock',
        key: 'web.key',
        holderPid: killed.pid,
      }),
    ]);
    expect(breaks(next)[0]?.lockAgeMs).toBeLessThan(STALE_LOCK_MS);
    expect(readFileSync(join(cwd, 'web.crt'), 'utf8')).not.toBe(before);
    expect(keyMatchesLeaf()).toBe(true);
    expect(existsSync(join(cwd, 'web.key.lock'))).toBe(false);
  }, 60_000);

  it('ok/a renewal waiting for a live holder waits, then goes on once that holder is killed', async () => {
    expect((await meshauth(['ca', 'issue', '--id', ID, '--out', 'web'], { cwd })).code).toBe(0);
    const holder = await stuckRenewal();
    const waiter = renew(url);
    await waitForCli(waiter, 'the second renewal to wait', () => waiter.output().includes(WAITING), 15_000);
    expect(waiter.alive()).toBe(true);
    expect(breaks(waiter)).toEqual([]);
    process.kill(holder.pid, 'SIGKILL');
    await holder.exited;
    const exit = await waiter.exited;
    expect(exit, waiter.output()).toEqual({ code: 0, signal: null });
    expect(breaks(waiter).map((line) => line.holderPid)).toEqual([holder.pid]);
    expect(keyMatchesLeaf()).toBe(true);
    expect(existsSync(join(cwd, 'web.key.lock'))).toBe(false);
  }, 60_000);
});
