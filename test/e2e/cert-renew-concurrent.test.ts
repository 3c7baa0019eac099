// Two commands writing or reading one key and chain at once (two `cert renew` cron jobs, a timer and a manual run,
// a `cert request --out` over the same files, a `cert token` run meanwhile), against a real `ca serve`. A renewal is
// paused after it has replaced the key and before it replaces the chain: the moment the files are a torn pair. A
// command paused there is let go once every other one is paused there too (then the last to replace the key goes
// first), is waiting for the pair's lock, or has ended, so every order that matters is reached. All must succeed and
// the files must end as a key and its own leaf. Without the lock, a second renewal read the first's half-written pair
// and refused it, or both wrote and the files held one run's key and the other's chain; a `cert request` wrote its
// pair in the middle of the renewal's; `cert token` refused the half-written pair.
import { type ChildProcess, spawn } from 'node:child_process';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, MAIN, meshauth, type RunningCli, serveCa } from '../helpers/meshauth-cli.js';
import { pauseAfterRename, type RenamePause } from '../helpers/pause-at-rename.js';
import { waitFor } from '../helpers/wait.js';

const ID = 'spiffe://example.org/ns/shop/sa/web';
const ROUNDS = 3;
/** What a command says on stderr when it waits for another one writing the pair `<pair>.key`, `<pair>.crt`. */
const waiting = (pair: string) => `meshauth: waiting for another process writing ${pair}.key and its certificate`;
let cwd: string;
let serve: RunningCli;
let url: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  assertBuilt(['src/cli', 'src/ca', 'src/agent']);
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-renew-concurrent-'));
  expect((await meshauth(['ca', 'init', '--trust-domain', 'example.org'], { cwd })).code).toBe(0);
  ({ serve, url } = await serveCa(cwd));
});
afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid);
  await serve?.stop();
  if (cwd !== undefined) rmSync(cwd, { recursive: true, force: true });
});

interface Run {
  readonly name: string;
  /** Set when the run pauses after replacing its key; its directory holds the pause's `.reached` file. */
  readonly pause: { readonly control: RenamePause; readonly dir: string } | undefined;
  /** The text that says this run waits for the pair's lock. */
  readonly waiting: string;
  released: boolean;
  code: number | null | undefined;
  stdout: string;
  stderr: string;
}

const caArgs = () => ['--ca-url', url, '--bundle', 'certs/bundle.pem'];
const renewArgs = (pair: string) => ['cert', 'renew', ...caArgs(), '--cert', `${pair}.crt`, '--key', `${pair}.key`];

/** A pair of its own for each test: `ca issue` writes `<pair>.crt` and `<pair>.key`. */
async function issuePair(pair: string): Promise<void> {
  const issued = await meshauth(['ca', 'issue', '--id', ID, '--out', pair], { cwd });
  expect(issued.code, issued.stderr).toBe(0);
}

/** Starts the built CLI with `args` on `pair`; with `pausing`, it pauses after its first rename onto the key. */
function start(name: string, pair: string, args: readonly string[], pausing: boolean): Run {
  let pause: Run['pause'];
  if (pausing) {
    const dir = join(cwd, 'pauses', name);
    mkdirSync(dir, { recursive: true });
    pause = { control: pauseAfterRename(dir, `${pair}.key`, name), dir };
  }
  const child = spawn(process.execPath, [MAIN, ...args], {
    cwd,
    env: pause?.control.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const run: Run = { name, pause, waiting: waiting(pair), released: false, code: undefined, stdout: '', stderr: '' };
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    run.stdout += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    run.stderr += chunk;
  });
  child.once('exit', (code) => {
    run.code = code;
  });
  return run;
}

/** When the run paused after replacing the key; undefined while it has not. */
function pausedAt(run: Run): number | undefined {
  if (run.pause === undefined) return undefined;
  const { dir } = run.pause;
  const reached = readdirSync(dir).find((file) => file.endsWith('.reached'));
  return reached === undefined ? undefined : statSync(join(dir, reached)).mtimeMs;
}

/** Lets paused runs go as the header says until all have ended (each wait bounded). */
async function drive(runs: readonly Run[]): Promise<void> {
  for (;;) {
    const running = runs.filter((r) => r.code === undefined);
    if (running.length === 0) return;
    const next = await waitFor(
      `a run to pause with the others out of its way, or to end (${runs.map((r) => r.stderr).join(' | ')})`,
      () => {
        if (running.some((r) => r.code !== undefined)) return 'ended';
        const paused = running.filter((r) => !r.released && pausedAt(r) !== undefined);
        const others = running.filter((r) => !paused.includes(r));
        if (paused.length === 0 || !others.every((r) => r.released || r.stderr.includes(r.waiting))) return undefined;
        // The last to replace the key first: its chain then lands before the other's.
        return paused.sort((a, b) => (pausedAt(b) ?? 0) - (pausedAt(a) ?? 0))[0];
      },
      30_000,
    );
    if (next !== 'ended') {
      next.released = true;
      next.pause?.control.release();
    }
  }
}

function keyMatchesLeaf(keyPem: string, chainPem: string): boolean {
  const key = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
  return key.equals(new X509Certificate(chainPem).publicKey.export({ type: 'spki', format: 'der' }));
}

/** The files hold a key and its own leaf; no lock or staged file is left beside them. */
function expectMatchingPair(pair: string, what: string): string {
  const chain = readFileSync(join(cwd, `${pair}.crt`), 'utf8');
  expect(keyMatchesLeaf(readFileSync(join(cwd, `${pair}.key`), 'utf8'), chain), what).toBe(true);
  expect(existsSync(join(cwd, `${pair}.key.lock`))).toBe(false);
  expect(readdirSync(cwd).filter((file) => file.endsWith('.tmp'))).toEqual([]);
  return chain;
}

function expectSucceeded(runs: readonly Run[], what: string): void {
  for (const run of runs) {
    expect({ what, name: run.name, code: run.code, stderr: run.stderr }).toMatchObject({ code: 0 });
  }
}

const issued = (pair: string) => new RegExp(`^issued ${ID} \\(p256, expires .*\\): ${pair}\\.crt, ${pair}\\.key\\n$`);

describe('commands on one key and chain at once', () => {
  it('ok/two renewals both succeed and the files end as a key and its own leaf, every round', async () => {
    await issuePair('renewed');
    for (let round = 0; round < ROUNDS; round++) {
      const before = readFileSync(join(cwd, 'renewed.crt'), 'utf8');
      const runs = [
        start(`a${round}`, 'renewed', renewArgs('renewed'), true),
        start(`b${round}`, 'renewed', renewArgs('renewed'), true),
      ];
      await drive(runs);
      expectSucceeded(runs, `round ${round}`);
      for (const run of runs) expect(run.stdout).toMatch(issued('renewed'));
      expect(expectMatchingPair('renewed', `round ${round}`)).not.toBe(before);
      // The one paused first held the pair's lock; the other waited for it.
      expect(runs.filter((r) => r.stderr.includes(r.waiting))).toHaveLength(1);
    }
  }, 120_000);

  it('ok/a cert request --out over the pair during a renewal waits for it, then writes a whole pair', async () => {
    await issuePair('requested');
    const token = await meshauth(['ca', 'token', 'create', '--id', ID], { cwd });
    expect(token.code, token.stderr).toBe(0);
    const renewal = start('renew-then-request', 'requested', renewArgs('requested'), true);
    await renewal.pause?.control.reached();
    const requestArgs = ['cert', 'request', ...caArgs(), '--token', token.stdout.trim(), '--out', 'requested'];
    const request = start('request', 'requested', requestArgs, false);
    await drive([renewal, request]);
    expectSucceeded([renewal, request], 'request');
    expect(request.stdout).toMatch(issued('requested'));
    expectMatchingPair('requested', 'request');
    expect(request.stderr).toContain(request.waiting);
  }, 60_000);

  it('ok/a cert token during a renewal waits for it, then authenticates with the renewed pair', async () => {
    await issuePair('tokened');
    const renewal = start('renew-then-token', 'tokened', renewArgs('tokened'), true);
    await renewal.pause?.control.reached();
    const tokenArgs = ['cert', 'token', ...caArgs(), '--cert', 'tokened.crt', '--key', 'tokened.key'];
    const token = start('token', 'tokened', [...tokenArgs, '--audience', 'https://api.example.com'], false);
    await drive([renewal, token]);
    expectSucceeded([renewal, token], 'token');
    expect(token.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    expectMatchingPair('tokened', 'token');
    expect(token.stderr).toContain(token.waiting);
  }, 60_000);
});
