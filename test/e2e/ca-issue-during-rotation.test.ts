// `meshauth ca issue` while `ca rotate --intermediate` (or an auto-rotating `ca serve`) is between writing the new
// intermediate key and its certificate: it waits for the rotation instead of refusing the directory as inconsistent,
// and the SVID it writes chains to the bundle through the intermediate on disk.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadCaMaterial } from '../../src/ca/index.js';
import { TrustDomain } from '../../src/identity/index.js';
import { parseCertificatesPem, TrustBundle, validateX509Svid } from '../../src/pki/index.js';
import { spawnCli } from '../helpers/cli-process.js';
import { assertBuilt, meshauth } from '../helpers/meshauth-cli.js';
import { pauseAfterRename } from '../helpers/pause-at-rename.js';
import { waitFor } from '../helpers/wait.js';

let cwd: string;
let cleanups: (() => Promise<void> | void)[] = [];
const dir = () => join(cwd, 'ca');

beforeAll(() => assertBuilt());
beforeEach(async () => {
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-issue-during-rotation-'));
  const init = await meshauth(['ca', 'init', '--trust-domain', 'example.org', '--dir', dir()], { cwd });
  expect(init.code, init.stderr).toBe(0);
});
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
  rmSync(cwd, { recursive: true, force: true });
});

describe('meshauth ca issue during an intermediate rotation', () => {
  it('ok/waits for the rotation, then issues under the new intermediate', async () => {
    const pause = pauseAfterRename(cwd, 'intermediate.key', 'rotate');
    const rotate = spawnCli(['ca', 'rotate', '--intermediate', '--dir', dir()], cleanups, pause.env);
    await pause.reached();
    const out = join(cwd, 'web');
    const issue = spawnCli(['ca', 'issue', '--id', 'spiffe://example.org/web', '--dir', dir(), '--out', out], cleanups);
    await waitFor('ca issue to finish or wait', () => !issue.alive() || /waiting/.test(issue.output()), 15_000);
    pause.release();
    expect((await rotate.exited).code, rotate.output()).toBe(0);
    expect((await issue.exited).code, issue.output()).toBe(0);
    const material = await loadCaMaterial(dir());
    const chain = parseCertificatesPem(readFileSync(`${out}.crt`, 'utf8'));
    expect(chain[1]?.serialNumber).toBe(material.issuer.certificate.serialNumber);
    const bundle = TrustBundle.fromPem(
      TrustDomain.parse('example.org'),
      readFileSync(join(dir(), 'bundle.pem'), 'utf8'),
    );
    expect(() => validateX509Svid(chain, bundle, new Date())).not.toThrow();
  });
});
