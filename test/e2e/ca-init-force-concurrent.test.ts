// `meshauth ca init --force` over the directory of a running `ca serve --auto-rotate-intermediate` that is minting
// its next intermediate at that moment: the replaced CA must come out whole (intermediate key and certificate of one
// run, the intermediate under the new root in bundle.pem), and the server must switch to it.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadCaMaterial, rotateIntermediate } from '../../src/ca/index.js';
import { spawnCli, waitForCli } from '../helpers/cli-process.js';
import { assertBuilt, meshauth } from '../helpers/meshauth-cli.js';
import { pauseAfterRename } from '../helpers/pause-at-rename.js';
import { waitFor } from '../helpers/wait.js';

let cwd: string;
let cleanups: (() => Promise<void> | void)[] = [];
const dir = () => join(cwd, 'ca');

beforeAll(() => assertBuilt());
beforeEach(async () => {
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-init-force-concurrent-'));
  const init = await meshauth(['ca', 'init', '--trust-domain', 'example.org', '--dir', dir()], { cwd });
  expect(init.code, init.stderr).toBe(0);
});
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
  rmSync(cwd, { recursive: true, force: true });
});

describe('meshauth ca init --force while ca serve rotates the intermediate', () => {
  it('ok/the new CA is whole and the server loads it', async () => {
    // An intermediate already past half its life: the server rotates within its first second.
    await rotateIntermediate(dir(), new Date(Date.now() - 120_000), 200_000);
    const pause = pauseAfterRename(cwd, 'intermediate.key', 'serve');
    const serve = spawnCli(
      [
        'ca',
        'serve',
        '--dir',
        dir(),
        '--listen',
        '127.0.0.1:0',
        '--auto-rotate-intermediate',
        '--intermediate-ttl',
        '1h',
      ],
      cleanups,
      pause.env,
    );
    await pause.reached();
    const init = spawnCli(['ca', 'init', '--force', '--trust-domain', 'example.org', '--dir', dir()], cleanups);
    await waitFor(
      'init to finish or wait for the server',
      () => !init.alive() || /waiting/.test(init.output()),
      15_000,
    );
    pause.release();
    expect((await init.exited).code, init.output()).toBe(0);
    expect(init.output()).toMatch(/waiting for another process changing .* \(\.intermediate-rotation\.lock: /);
    await waitForCli(
      serve,
      'the auto-rotation to finish',
      () => serve.logs().some((l) => l.event === 'intermediate_rotated' || l.event === 'intermediate_rotation_failed'),
      15_000,
    );
    // Throws MESHAUTH_ERR_CA_UNAVAILABLE `inconsistent` on a key that is not intermediate.crt's or a broken chain.
    const material = await loadCaMaterial(dir());
    expect(material.root.toString('pem').trim()).toBe(readFileSync(join(dir(), 'root.crt'), 'utf8').trim());
    const serial = material.issuer.certificate.serialNumber;
    await waitForCli(
      serve,
      `the server to load intermediate ${serial}`,
      () => serve.logs().some((l) => l.event === 'ca_reloaded' && l.intermediateSerial === serial),
      15_000,
    );
  });
});
