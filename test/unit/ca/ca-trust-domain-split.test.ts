// A CA directory whose ca.json names another trust domain than its intermediate (a `ca init --force --trust-domain`
// stopped between ca.json and the intermediate, a hand edit) is refused as inconsistent, naming both. Before, it
// loaded: `ca issue` and `ca serve` signed leaves of ca.json's trust domain under an intermediate whose name
// constraints allow only its own, which every relying party refused while the CA reported success.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CaAuthority, issueOffline, loadCaMaterial } from '../../../src/ca/index.js';
import { silentLogger } from '../../../src/telemetry/index.js';
import { makeCaDir } from '../../helpers/ca-dir.js';

let ca: Awaited<ReturnType<typeof makeCaDir>>;
beforeEach(async () => {
  ca = await makeCaDir('example.org');
});
afterEach(() => ca.cleanup());

function writeCaJson(trustDomain: string): void {
  writeFileSync(join(ca.dir, 'ca.json'), `${JSON.stringify({ trustDomain })}\n`);
}

const split = {
  code: 'MESHAUTH_ERR_CA_UNAVAILABLE',
  reason: 'inconsistent',
  message: expect.stringMatching(/names trust domain other\.org but intermediate\.crt is of example\.org/),
};

describe('trust domain of ca.json against the intermediate', () => {
  it('fail/ca.json names other.org, the intermediate is of example.org → inconsistent, naming both', async () => {
    writeCaJson('other.org');
    await expect(loadCaMaterial(ca.dir)).rejects.toMatchObject(split);
  });

  it('fail/`ca issue` under the split directory issues nothing', async () => {
    writeCaJson('other.org');
    await expect(
      issueOffline({ dir: ca.dir, id: 'spiffe://other.org/ns/a/sa/b', ttlMs: 600_000 }),
    ).rejects.toMatchObject(split);
  });

  it('fail/`ca serve` does not start on the split directory', async () => {
    writeCaJson('other.org');
    await expect(CaAuthority.open(ca.dir, silentLogger())).rejects.toMatchObject(split);
  });

  it('ok/ca.json and the intermediate agree → loads', async () => {
    writeCaJson('example.org');
    await expect(loadCaMaterial(ca.dir)).resolves.toMatchObject({ trustDomain: { name: 'example.org' } });
  });

  it('ok/no ca.json: the trust domain of root.crt, which the intermediate shares → loads', async () => {
    rmSync(join(ca.dir, 'ca.json'));
    await expect(loadCaMaterial(ca.dir)).resolves.toMatchObject({ trustDomain: { name: 'example.org' } });
  });
});
