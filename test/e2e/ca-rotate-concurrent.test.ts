// `meshauth ca rotate` against a CA directory another process is writing at the same moment: a second `ca rotate`,
// or `ca serve --auto-rotate-intermediate` minting its next intermediate. The first writer is held right after it
// replaced a key (test/helpers/pause-at-rename), the other command runs then, and afterwards the directory must still
// fit together: the intermediate key belongs to intermediate.crt, which chains to a root of bundle.pem; and every JWT
// key that ever signed stays published.
// Every test has a CA directory, processes and pause of its own, and mostly waits for process starts: the tests run
// side by side, taking `expect` from their context.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, it } from 'vitest';
import { loadCaMaterial, rotateIntermediate } from '../../src/ca/index.js';
import { loadOrCreateJwtSigningKey } from '../../src/ca/jwt-signing-key.js';
import { type CliCaDir, cliCaDirForTest } from '../helpers/ca-dir.js';
import { type CliProcess, spawnAutoRotatingServe, spawnCli, waitForCli } from '../helpers/cli-process.js';
import { assertBuilt, meshauth } from '../helpers/meshauth-cli.js';
import { pauseAfterRename } from '../helpers/pause-at-rename.js';
import { waitFor } from '../helpers/wait.js';

beforeAll(() => assertBuilt());

/** The test's own CA directory, made by `ca init`, removed (and its processes ended) when the test finishes. */
const caDirFor = (onTestFinished: Parameters<typeof cliCaDirForTest>[1]): Promise<CliCaDir> =>
  cliCaDirForTest('meshauth-e2e-rotate-concurrent-', onTestFinished);

/** The second command ran to its end, or is waiting for the first one (as it should): either way it is there. */
async function ranOrWaits(cli: CliProcess): Promise<void> {
  await waitFor(
    'the second command to finish or wait for the first',
    () => !cli.alive() || /waiting/.test(cli.output()),
    15_000,
  );
}

async function exitCode(cli: CliProcess): Promise<number | null> {
  return (await cli.exited).code;
}

async function expectConsistent(dir: string): Promise<string> {
  // Throws MESHAUTH_ERR_CA_UNAVAILABLE `inconsistent` when the key is not intermediate.crt's or the chain is broken.
  const material = await loadCaMaterial(dir);
  return material.issuer.certificate.serialNumber;
}

describe.concurrent('meshauth ca rotate while another process writes the same directory', { timeout: 60_000 }, () => {
  it('ok/two `ca rotate --intermediate` at once: the key on disk belongs to the certificate on disk', async ({
    expect,
    onTestFinished,
  }) => {
    const { cwd, dir, cleanups } = await caDirFor(onTestFinished);
    const pause = pauseAfterRename(cwd, 'intermediate.key', 'first');
    const first = spawnCli(['ca', 'rotate', '--intermediate', '--dir', dir], cleanups, pause.env);
    await pause.reached();
    const second = spawnCli(['ca', 'rotate', '--intermediate', '--dir', dir], cleanups);
    await ranOrWaits(second);
    pause.release();
    expect(await exitCode(first), first.output()).toBe(0);
    expect(await exitCode(second), second.output()).toBe(0);
    await expectConsistent(dir);
    expect(second.output()).toMatch(/waiting for another process changing .* \(\.intermediate-rotation\.lock: /);
  });

  it('ok/`ca rotate --intermediate` while `ca serve --auto-rotate-intermediate` rotates: a consistent pair, and the server loads it', async ({
    expect,
    onTestFinished,
  }) => {
    const { cwd, dir, cleanups } = await caDirFor(onTestFinished);
    // An intermediate already past half its life: the server rotates within its first second.
    await rotateIntermediate(dir, new Date(Date.now() - 120_000), 200_000);
    const pause = pauseAfterRename(cwd, 'intermediate.key', 'serve');
    const serve = spawnAutoRotatingServe(dir, cleanups, pause.env);
    await pause.reached();
    const rotate = spawnCli(['ca', 'rotate', '--intermediate', '--dir', dir], cleanups);
    await ranOrWaits(rotate);
    pause.release();
    expect(await exitCode(rotate), rotate.output()).toBe(0);
    await waitForCli(
      serve,
      'the auto-rotation to finish',
      () => serve.logs().some((l) => l.event === 'intermediate_rotated' || l.event === 'intermediate_rotation_failed'),
      15_000,
    );
    const serial = await expectConsistent(dir);
    // The running server ends up signing with what is on disk.
    await waitForCli(
      serve,
      `the server to load intermediate ${serial}`,
      () => serve.logs().some((l) => l.event === 'ca_reloaded' && l.intermediateSerial === serial),
      15_000,
    );
  });

  it('ok/`ca rotate --root --activate` while `ca serve --auto-rotate-intermediate` rotates: the intermediate is under the new root', async ({
    expect,
    onTestFinished,
  }) => {
    const { cwd, dir, cleanups } = await caDirFor(onTestFinished);
    await rotateIntermediate(dir, new Date(Date.now() - 120_000), 200_000);
    expect((await meshauth(['ca', 'rotate', '--root', '--dir', dir], { cwd })).code).toBe(0);
    const pause = pauseAfterRename(cwd, 'intermediate.key', 'serve');
    const serve = spawnAutoRotatingServe(dir, cleanups, pause.env);
    await pause.reached();
    const activate = spawnCli(['ca', 'rotate', '--root', '--activate', '--dir', dir], cleanups);
    await ranOrWaits(activate);
    pause.release();
    expect(await exitCode(activate), activate.output()).toBe(0);
    await waitForCli(
      serve,
      'the auto-rotation to finish',
      () => serve.logs().some((l) => l.event === 'intermediate_rotated' || l.event === 'intermediate_rotation_failed'),
      15_000,
    );
    await expectConsistent(dir);
    // Signed by the active root: `--root --retire` takes the previous root out of the bundle, and an intermediate
    // left under it would then chain to nothing.
    const material = await loadCaMaterial(dir);
    expect(material.root.toString('pem').trim()).toBe(readFileSync(join(dir, 'root.crt'), 'utf8').trim());
  });

  it('ok/two `ca rotate --root` at once: one publishes, the other is refused; the published root can be activated', async ({
    expect,
    onTestFinished,
  }) => {
    const { cwd, dir, cleanups } = await caDirFor(onTestFinished);
    const pause = pauseAfterRename(cwd, 'root-next.key', 'first');
    const first = spawnCli(['ca', 'rotate', '--root', '--dir', dir], cleanups, pause.env);
    await pause.reached();
    const second = spawnCli(['ca', 'rotate', '--root', '--dir', dir], cleanups);
    await ranOrWaits(second);
    pause.release();
    const codes = [await exitCode(first), await exitCode(second)];
    expect(codes, `${first.output()}\n${second.output()}`).toEqual([0, 2]);
    expect(second.output()).toContain('a new root is already published');
    const activate = await meshauth(['ca', 'rotate', '--root', '--activate', '--dir', dir], { cwd });
    expect(activate.code, activate.stderr).toBe(0);
    const material = await loadCaMaterial(dir);
    // The old root and the one published: no third root nobody holds the key of.
    expect(material.bundle.roots).toHaveLength(2);
  });

  it('ok/two `ca rotate --jwt-key` at once: every key that signed stays in jwt.key or jwt-retired.json', async ({
    expect,
    onTestFinished,
  }) => {
    const { cwd, dir, cleanups } = await caDirFor(onTestFinished);
    const pause = pauseAfterRename(cwd, 'jwt-retired.json', 'first');
    const first = spawnCli(['ca', 'rotate', '--jwt-key', '--dir', dir], cleanups, pause.env);
    await pause.reached();
    const second = spawnCli(['ca', 'rotate', '--jwt-key', '--dir', dir], cleanups);
    await ranOrWaits(second);
    pause.release();
    expect(await exitCode(first), first.output()).toBe(0);
    expect(await exitCode(second), second.output()).toBe(0);
    const signing = [first, second].map((cli) => /new JWT-SVID signing key (\S+) is published/.exec(cli.output())?.[1]);
    const retired = readFileSync(join(dir, 'jwt-retired.json'), 'utf8');
    const { kid: active } = await loadOrCreateJwtSigningKey(dir, undefined, false);
    for (const kid of signing) {
      expect(kid).toBeDefined();
      expect(
        kid === active || retired.includes(`"${kid}"`),
        `key ${kid} signed, and is neither jwt.key nor retired`,
      ).toBe(true);
    }
  });
});
