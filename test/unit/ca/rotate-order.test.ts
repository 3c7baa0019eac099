// Root rotation is two steps (publish, then activate): doing them out of order is refused with a clear reason,
// and nothing in the CA directory changes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { activateNextRoot, publishNextRoot } from '../../../src/ca/index.js';
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
});
