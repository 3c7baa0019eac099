// Root rotation is two steps (publish, then activate): doing them out of order is refused with a clear reason,
// and nothing in the CA directory changes.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { activateNextRoot, publishNextRoot, retirePreviousRoot } from '../../../src/ca/index.js';
import { parseCertificatesPem } from '../../../src/pki/index.js';
import { makeCaDir } from '../../helpers/ca-dir.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

async function caDir(): Promise<string> {
  const { dir, cleanup } = await makeCaDir();
  cleanups.push(cleanup);
  return dir;
}

describe('ca rotate --root ordering', () => {
  it('fail/publishing a second root while one is pending → root_pending', async () => {
    const dir = await caDir();
    await publishNextRoot(dir);
    const bundle = readFileSync(join(dir, 'bundle.pem'), 'utf8');
    await expect(publishNextRoot(dir)).rejects.toMatchObject({ code: 'MESHAUTH_ERR_USAGE', reason: 'root_pending' });
    expect(readFileSync(join(dir, 'bundle.pem'), 'utf8')).toBe(bundle);
  });

  it('fail/activating with nothing published → no_pending_root', async () => {
    const dir = await caDir();
    const root = readFileSync(join(dir, 'root.crt'), 'utf8');
    await expect(activateNextRoot(dir)).rejects.toMatchObject({
      code: 'MESHAUTH_ERR_USAGE',
      reason: 'no_pending_root',
    });
    expect(readFileSync(join(dir, 'root.crt'), 'utf8')).toBe(root);
  });

  it('fail/activating a second root before the previous one is retired → previous_root_not_retired', async () => {
    // Activating again would overwrite root-previous.* with the root just replaced: the older root would stay in
    // bundle.pem for good, with no root-previous.crt left for --retire to remove it by.
    const dir = await caDir();
    await publishNextRoot(dir);
    await activateNextRoot(dir);
    await publishNextRoot(dir);
    const before = ['root.crt', 'root-previous.crt', 'bundle.pem'].map((f) => readFileSync(join(dir, f), 'utf8'));
    await expect(activateNextRoot(dir)).rejects.toMatchObject({
      code: 'MESHAUTH_ERR_USAGE',
      reason: 'previous_root_not_retired',
    });
    expect(['root.crt', 'root-previous.crt', 'bundle.pem'].map((f) => readFileSync(join(dir, f), 'utf8'))).toEqual(
      before,
    );
    // Retiring first, then activating, works: after the last retire only the newest root is left.
    await retirePreviousRoot(dir, new Date(), true);
    await activateNextRoot(dir);
    await retirePreviousRoot(dir, new Date(), true);
    const roots = parseCertificatesPem(readFileSync(join(dir, 'bundle.pem'), 'utf8'));
    expect(roots.map((root) => root.serialNumber)).toEqual(
      parseCertificatesPem(readFileSync(join(dir, 'root.crt'), 'utf8')).map((root) => root.serialNumber),
    );
    expect(existsSync(join(dir, 'root-previous.key'))).toBe(false);
  });
});
