// `ca init --force` (initCa with force) over a CA in the middle of its rotations: the new CA starts clean. Nothing of
// the old one's rotations stays in the directory (a previous root with its key, a retired root, retired JWT keys),
// and the new CA's own root rotation runs from the start.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  activateNextRoot,
  caPaths,
  initCa,
  publishNextRoot,
  retirePreviousRoot,
  rotateJwtSigningKey,
} from '../../src/ca/index.js';

const parent = mkdtempSync(join(tmpdir(), 'meshauth-ca-force-'));
afterAll(() => rmSync(parent, { recursive: true, force: true }));

describe('initCa with force over a CA that has rotated', () => {
  it('ok/no root-previous.*, root-retired.crt or jwt-retired.json of the old CA; the new CA rotates its root', async () => {
    const dir = join(parent, 'certs');
    const paths = caPaths(dir);
    await initCa({ dir, trustDomain: 'example.org' });
    await rotateJwtSigningKey(dir);
    await publishNextRoot(dir);
    await activateNextRoot(dir);
    await retirePreviousRoot(dir, new Date(), true); // root-retired.crt
    await publishNextRoot(dir);
    await activateNextRoot(dir); // root-previous.crt and .key again
    for (const file of [paths.previousRootCert, paths.previousRootKey, paths.retiredRootCert, paths.jwtRetired]) {
      expect(existsSync(file), file).toBe(true);
    }

    await initCa({ dir, trustDomain: 'example.org', force: true });

    for (const file of [paths.previousRootCert, paths.previousRootKey, paths.retiredRootCert, paths.jwtRetired]) {
      expect(existsSync(file), file).toBe(false);
    }
    await publishNextRoot(dir);
    expect((await activateNextRoot(dir)).action).toBe('root_activated');
  });
});
