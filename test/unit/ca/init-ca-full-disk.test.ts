// `ca init` on a full disk: the staged files fail with ENOSPC before anything in the directory changed. The error
// names the CA's file it was for (the CLI's MESHAUTH_ERR_FILE_UNWRITABLE), not its staging copy; the marker and
// the staging directory go, so the directory is as it was: empty, or the CA `--force` was to replace. Over a half-made
// CA the marker stays, begun, so that the next run still replaces it.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

vi.mock('node:fs/promises', async (original) =>
  (await import('../../helpers/full-disk-fs.js')).fullDiskFsPromises(await original()),
);
const { fullAtWrite } = await import('../../helpers/full-disk-fs.js');

const { initCa } = await import('../../../src/ca/store.js');
const { thisProcess } = await import('../../../src/platform/process-identity.js');

const root = mkdtempSync(join(tmpdir(), 'meshauth-init-full-'));
const template = join(root, 'template');
beforeAll(() => initCa({ dir: template, trustDomain: 'example.org' }));
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(() => {
  fullAtWrite.prefix = undefined;
});

async function failingInit(dir: string, force: boolean): Promise<NodeJS.ErrnoException> {
  fullAtWrite.prefix = join(dir, '.ca-init.staging');
  const error = await initCa({ dir, trustDomain: 'example.org', force }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(Error);
  return error as NodeJS.ErrnoException;
}

describe('initCa on a full disk', () => {
  it('fail/a fresh directory → ENOSPC naming jwt.key (the first file); the directory is left empty', async () => {
    const dir = join(root, 'fresh');
    const error = await failingInit(dir, false);
    expect(error).toMatchObject({ code: 'ENOSPC', syscall: 'write', path: join(dir, 'jwt.key') });
    expect(readdirSync(dir)).toEqual([]);
  });

  it('fail/--force over a CA → the same; the CA is untouched and still refused without --force', async () => {
    const dir = join(root, 'forced');
    cpSync(template, dir, { recursive: true });
    await failingInit(dir, true);
    expect(readdirSync(dir).sort()).toEqual(readdirSync(template).sort());
    expect(readFileSync(join(dir, 'root.key'), 'utf8')).toBe(readFileSync(join(template, 'root.key'), 'utf8'));
    await expect(initCa({ dir, trustDomain: 'example.org' })).rejects.toMatchObject({ code: 'MESHAUTH_ERR_CA_EXISTS' });
  });

  it.runIf(process.platform === 'linux')(
    'fail/after taking over a dead run that had begun → ENOSPC; the marker stays begun, the next run replaces it',
    async () => {
      const dir = join(root, 'half-made');
      mkdirSync(dir);
      for (const name of ['jwt.key', 'root.key']) cpSync(join(template, name), join(dir, name));
      const self = thisProcess();
      if (self === undefined) throw new Error('this process has no identity: no /proc');
      const deadPid = spawnSync(process.execPath, ['-e', '']).pid ?? 0;
      const dead = { token: 'a'.repeat(32), writer: { ...self, pid: deadPid }, host: 'builder-7', begun: true };
      writeFileSync(join(dir, '.ca-init'), `${JSON.stringify(dead)}\n`, { mode: 0o600 });
      const error = await failingInit(dir, false);
      expect(error).toMatchObject({ code: 'ENOSPC' });
      expect(JSON.parse(readFileSync(join(dir, '.ca-init'), 'utf8'))).toMatchObject({ begun: true });
      fullAtWrite.prefix = undefined; // room again
      const made = await initCa({ dir, trustDomain: 'example.org' });
      expect(made.interruptedRun).toMatchObject({ begun: true });
      expect(readFileSync(join(dir, 'root.key'), 'utf8')).not.toBe(readFileSync(join(template, 'root.key'), 'utf8'));
      expect(readdirSync(dir).filter((entry) => entry.startsWith('.ca-init'))).toEqual([]);
    },
  );
});
