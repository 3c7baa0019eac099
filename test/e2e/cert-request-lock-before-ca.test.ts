// `cert request` took the lock of --out only after the CA had answered: a run that found another one writing the same
// pair had already spent its single-use join token before it started waiting. The lock is now taken before the CA
// call and held across it and the write, so a run stopped while it waits leaves its token unspent.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, meshauth, type RunningCli, serveCa, spawnMeshauth } from '../helpers/meshauth-cli.js';

const ID = 'spiffe://example.org/ns/shop/sa/batch';
let cwd: string;
let serve: RunningCli;
let url: string;
let waiting: RunningCli | undefined;

beforeAll(async () => {
  assertBuilt(['src/cli', 'src/ca', 'src/agent']);
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-lock-before-ca-'));
  expect((await meshauth(['ca', 'init', '--trust-domain', 'example.org'], { cwd })).code).toBe(0);
  ({ serve, url } = await serveCa(cwd));
});
afterAll(async () => {
  await waiting?.stop();
  await serve?.stop();
  if (cwd !== undefined) rmSync(cwd, { recursive: true, force: true });
});

const requestArgs = (out: string) => [
  'cert',
  'request',
  '--ca-url',
  url,
  '--bundle',
  'certs/bundle.pem',
  '--token-file',
  'join.token',
  '--out',
  out,
];

/** Polls `condition` every 50 ms, at most `attempts` times. */
async function until(condition: () => boolean, attempts = 600): Promise<boolean> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (condition()) return true;
    await delay(50);
  }
  return condition();
}

describe('cert request waits for the lock of --out before the CA call', () => {
  it('ok/a run stopped while it waits for the lock has not spent its join token', async () => {
    const created = await meshauth(['ca', 'token', 'create', '--id', ID], { cwd });
    expect(created.code, created.stderr).toBe(0);
    writeFileSync(join(cwd, 'join.token'), created.stdout, { mode: 0o600 });
    // Another process writing held.key and held.crt: a fresh lock, so it is waited for, not broken as stale.
    writeFileSync(join(cwd, 'held.key.lock'), 'test holder\n', { mode: 0o600 });

    const run = spawnMeshauth(requestArgs('held'), { cwd });
    waiting = run;
    const waits = await until(
      () =>
        run.stderr().includes('meshauth: waiting for another process writing held.key') || run.child.exitCode !== null,
    );
    expect(waits, run.stderr()).toBe(true);
    expect(run.child.exitCode, run.stderr()).toBeNull();
    await run.stop();

    const again = await meshauth(requestArgs('fresh'), { cwd });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(`issued ${ID}`);
  });
});
