// `meshauth ca issue` while `ca rotate --intermediate` (or an auto-rotating `ca serve`) is between writing the new
// intermediate key and its certificate: it waits for the rotation instead of refusing the directory as inconsistent,
// and the SVID it writes chains to the bundle through the intermediate on disk.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCaMaterial } from '../../src/ca/index.js';
import { TrustDomain } from '../../src/identity/index.js';
import { parseCertificatesPem, TrustBundle, validateX509Svid } from '../../src/pki/index.js';
import { cliCaDirPerTest } from '../helpers/ca-dir.js';
import { spawnCli } from '../helpers/cli-process.js';
import { pauseAfterRename } from '../helpers/pause-at-rename.js';
import { waitFor } from '../helpers/wait.js';

const ca = cliCaDirPerTest('meshauth-e2e-issue-during-rotation-');
const dir = () => ca.dir;

describe('meshauth ca issue during an intermediate rotation', () => {
  it('ok/waits for the rotation, then issues under the new intermediate', async () => {
    const pause = pauseAfterRename(ca.cwd, 'intermediate.key', 'rotate');
    const rotate = spawnCli(['ca', 'rotate', '--intermediate', '--dir', dir()], ca.cleanups, pause.env);
    await pause.reached();
    const out = join(ca.cwd, 'web');
    const issue = spawnCli(
      ['ca', 'issue', '--id', 'spiffe://example.org/web', '--dir', dir(), '--out', out],
      ca.cleanups,
    );
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
