// `ca init` (initCa) run several times at once on one empty directory: one makes the CA, every other refuses with
// MESHAUTH_ERR_CA_EXISTS having written nothing, and the CA on disk is whole. In one process the runs interleave
// at every await, so all of them find the directory empty before any writes.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initCa } from '../../src/ca/index.js';
import { MeshauthError } from '../../src/errors/index.js';

const parent = mkdtempSync(join(tmpdir(), 'meshauth-ca-init-'));
afterAll(() => rmSync(parent, { recursive: true, force: true }));

describe('initCa run six times at once on one empty directory', () => {
  it('ok/exactly one creates the CA; the others throw MESHAUTH_ERR_CA_EXISTS; root, intermediate and bundle agree', async () => {
    const dir = join(parent, 'certs');
    const runs = await Promise.allSettled(Array.from({ length: 6 }, () => initCa({ dir, trustDomain: 'example.org' })));
    const refused = runs.filter((run) => run.status === 'rejected');
    expect(runs.filter((run) => run.status === 'fulfilled')).toHaveLength(1);
    for (const run of refused) {
      expect(run.reason).toBeInstanceOf(MeshauthError);
      expect((run.reason as MeshauthError).code).toBe('MESHAUTH_ERR_CA_EXISTS');
    }
    const root = new X509Certificate(readFileSync(join(dir, 'root.crt')));
    const intermediate = new X509Certificate(readFileSync(join(dir, 'intermediate.crt')));
    expect(root.checkPrivateKey(createPrivateKey(readFileSync(join(dir, 'root.key'))))).toBe(true);
    expect(intermediate.checkPrivateKey(createPrivateKey(readFileSync(join(dir, 'intermediate.key'))))).toBe(true);
    expect(intermediate.verify(root.publicKey)).toBe(true);
    expect(new X509Certificate(readFileSync(join(dir, 'bundle.pem'))).raw).toEqual(root.raw);
  });

  it('ok/--force still replaces an existing CA', async () => {
    const dir = join(parent, 'forced');
    await initCa({ dir, trustDomain: 'example.org' });
    const before = readFileSync(join(dir, 'root.key'), 'utf8');
    await initCa({ dir, trustDomain: 'example.org', force: true });
    expect(readFileSync(join(dir, 'root.key'), 'utf8')).not.toBe(before);
  });
});
