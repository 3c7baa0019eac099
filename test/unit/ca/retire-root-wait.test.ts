// `ca rotate --root --retire` waits 24 h (plus the 1 min backdating) from the new intermediate's notBefore, that is
// from when `--root --activate` ran on the operator's machine. With --k8s-secret the replicas keep signing under the
// old root until the applied Secret reaches them, which no file of the directory records. Before, the refusal named
// only the time computed from the command, so an operator who applied the Secret late came back at that time and
// retired a root whose SVIDs were still valid; the refusal now says to count from when every replica loaded it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { activateNextRoot, publishNextRoot, retirePreviousRoot } from '../../../src/ca/index.js';
import { MeshauthError } from '../../../src/errors/index.js';
import { parseCertificatesPem } from '../../../src/pki/index.js';
import { makeCaDir } from '../../helpers/ca-dir.js';

const DAY_AND_BACKDATE_MS = 24 * 3_600_000 + 60_000;

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** A CA directory right after `--root --activate`, and the time its refusal names. */
async function activated(): Promise<{ dir: string; safeAt: Date }> {
  const { dir, cleanup } = await makeCaDir();
  cleanups.push(cleanup);
  await publishNextRoot(dir);
  await activateNextRoot(dir);
  const [intermediate] = parseCertificatesPem(readFileSync(join(dir, 'intermediate.crt'), 'utf8'));
  if (intermediate === undefined) throw new Error('no intermediate after activation');
  return { dir, safeAt: new Date(intermediate.notBefore.getTime() + DAY_AND_BACKDATE_MS) };
}

describe('ca rotate --root --retire: when the previous root may go', () => {
  it('fail/before the safe time: root_still_in_use naming it, counted from the Secret with --k8s-secret', async () => {
    const { dir, safeAt } = await activated();
    const bundle = readFileSync(join(dir, 'bundle.pem'), 'utf8');
    const error = await retirePreviousRoot(dir, new Date(safeAt.getTime() - 1)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(MeshauthError);
    expect(error).toMatchObject({ code: 'MESHAUTH_ERR_USAGE', reason: 'root_still_in_use' });
    const message = (error as MeshauthError).message;
    expect(message).toContain(`may be valid until ${safeAt.toISOString()}`);
    expect(message).toContain('--force');
    expect(message).toContain('with --k8s-secret, count 24 h from when every replica loaded the applied Secret');
    expect(readFileSync(join(dir, 'bundle.pem'), 'utf8')).toBe(bundle);
  });

  it('ok/at the safe time the previous root leaves the bundle', async () => {
    const { dir, safeAt } = await activated();
    const result = await retirePreviousRoot(dir, safeAt);
    expect(result).toMatchObject({ action: 'root_retired', roots: 1 });
  });
});
