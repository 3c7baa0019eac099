// `meshauth cert request/renew` replace PREFIX.key and PREFIX.crt. Each file is written atomically, but the two
// are one credential: a write that fails half-way must leave the old key with the old chain, or the workload holds a
// key that matches no certificate and cannot even renew (renewal authenticates with that pair).
import {
  chmodSync,
  chownSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

/** Paths under this prefix behave as on a full file system: creating a file there fails with ENOSPC. */
const full = vi.hoisted(() => ({ prefix: undefined as string | undefined }));
/** A file that cannot be replaced (bind-mounted into a container, or immutable): a rename onto it fails with EBUSY. */
const busy = vi.hoisted(() => ({ path: undefined as string | undefined }));

vi.mock('node:fs/promises', async (original) => {
  // Files opened under full-disk-fs's `fullAtWrite.prefix` take no data (open succeeds, the first write fails).
  const fs = (await import('../../helpers/full-disk-fs.js')).fullDiskFsPromises(
    await original<typeof import('node:fs/promises')>(),
  );
  const open = ((path: Parameters<typeof fs.open>[0], ...rest: unknown[]) => {
    if (full.prefix !== undefined && String(path).startsWith(full.prefix)) {
      return Promise.reject(
        Object.assign(new Error(`ENOSPC: no space left on device, open '${path}'`), { code: 'ENOSPC' }),
      );
    }
    return (fs.open as (...args: unknown[]) => ReturnType<typeof fs.open>)(path, ...rest);
  }) as typeof fs.open;
  const rename = ((from: Parameters<typeof fs.rename>[0], to: Parameters<typeof fs.rename>[1]) => {
    if (busy.path !== undefined && String(to) === busy.path) {
      return Promise.reject(
        Object.assign(new Error(`EBUSY: resource busy or locked, rename '${from}' -> '${to}'`), {
          code: 'EBUSY',
          syscall: 'rename',
          path: String(from),
        }),
      );
    }
    return fs.rename(from, to);
  }) as typeof fs.rename;
  return { ...fs, default: { ...fs, open, rename }, open, rename };
});

const { fullAtWrite } = await import('../../helpers/full-disk-fs.js');
const { writeKeyAndChain } = await import('../../../src/cli/cert.js');
const { exitCodeFor, formatError, fromFileSystemError } = await import('../../../src/cli/run.js');

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'meshauth-cert-files-'));
  full.prefix = undefined;
  fullAtWrite.prefix = undefined;
  busy.path = undefined;
});
afterEach(() => {
  full.prefix = undefined;
  fullAtWrite.prefix = undefined;
  busy.path = undefined;
  rmSync(root, { recursive: true, force: true });
});

describe('writeKeyAndChain', () => {
  it('ok/writes the key 0600 and the chain 0644', async () => {
    const keyFile = join(root, 'svid.key');
    const certFile = join(root, 'certs', 'svid.crt');
    await writeKeyAndChain(keyFile, certFile, 'NEW KEY\n', 'NEW CHAIN\n');
    expect(readFileSync(keyFile, 'utf8')).toBe('NEW KEY\n');
    expect(readFileSync(certFile, 'utf8')).toBe('NEW CHAIN\n');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(statSync(certFile).mode & 0o777).toBe(0o644);
  });

  it("fail/the chain's file system is full: the old key and chain stay as they were (still a pair)", async () => {
    const keyFile = join(root, 'keys', 'svid.key');
    const certDir = join(root, 'certs');
    const certFile = join(certDir, 'svid.crt');
    mkdirSync(join(root, 'keys'));
    mkdirSync(certDir);
    writeFileSync(keyFile, 'OLD KEY\n', { mode: 0o600 });
    writeFileSync(certFile, 'OLD CHAIN\n');
    full.prefix = certDir;
    await expect(writeKeyAndChain(keyFile, certFile, 'NEW KEY\n', 'NEW CHAIN\n')).rejects.toMatchObject({
      code: 'ENOSPC',
    });
    expect(readFileSync(keyFile, 'utf8')).toBe('OLD KEY\n');
    expect(readFileSync(certFile, 'utf8')).toBe('OLD CHAIN\n');
  });

  // Planted by whoever can write the directory: renewing must neither write through it nor take its owner for the
  // new key (that would hand the key to that user).
  it.skipIf(process.getuid?.() !== 0)(
    'ok/a symlink at the key path is replaced, not followed, and lends the new key no owner',
    async () => {
      const elsewhere = join(root, 'elsewhere');
      writeFileSync(elsewhere, 'NOT A KEY\n', { mode: 0o644 });
      chownSync(elsewhere, 4242, 4242);
      const keyFile = join(root, 'svid.key');
      symlinkSync(elsewhere, keyFile);
      await writeKeyAndChain(keyFile, join(root, 'svid.crt'), 'NEW KEY\n', 'NEW CHAIN\n');
      expect(readFileSync(elsewhere, 'utf8')).toBe('NOT A KEY\n');
      const key = lstatSync(keyFile);
      expect(key.isFile()).toBe(true);
      expect({ uid: key.uid, mode: key.mode & 0o777 }).toEqual({ uid: 0, mode: 0o600 });
    },
  );

  // The key is renamed first: a chain that cannot then be replaced used to leave the new key beside the old chain, a
  // pair `cert renew` itself refuses (key_mismatch), so the workload could only start again from a join token.
  it('fail/the chain cannot be replaced (EBUSY): the old key is put back, nothing else is left, the error names the chain', async () => {
    const keyFile = join(root, 'svid.key');
    const certFile = join(root, 'svid.crt');
    writeFileSync(keyFile, 'OLD KEY\n', { mode: 0o640 });
    writeFileSync(certFile, 'OLD CHAIN\n');
    busy.path = certFile;
    const error = await writeKeyAndChain(keyFile, certFile, 'NEW KEY\n', 'NEW CHAIN\n').catch((e: unknown) => e);
    expect(readFileSync(keyFile, 'utf8')).toBe('OLD KEY\n');
    expect(statSync(keyFile).mode & 0o777).toBe(0o640);
    expect(readFileSync(certFile, 'utf8')).toBe('OLD CHAIN\n');
    expect(readdirSync(root).sort()).toEqual(['svid.crt', 'svid.key']);
    expect(error).toMatchObject({ code: 'EBUSY', path: certFile });
  });

  it('fail/cert request where a directory has the chain name: the new key is not left alone', async () => {
    const keyFile = join(root, 'svid.key');
    const certFile = join(root, 'svid.crt');
    mkdirSync(certFile);
    const error = await writeKeyAndChain(keyFile, certFile, 'NEW KEY\n', 'NEW CHAIN\n').catch((e: unknown) => e);
    expect(readdirSync(root)).toEqual(['svid.crt']);
    expect(error).toMatchObject({ code: 'EISDIR', path: certFile });
  });

  it('ok/one path for both (a combined file): the chain then the key, in one file kept 0600', async () => {
    const file = join(root, 'svid.pem');
    writeFileSync(file, 'OLD CHAIN\nOLD KEY\n', { mode: 0o600 });
    await writeKeyAndChain(file, `${root}/./svid.pem`, 'NEW KEY\n', 'NEW CHAIN\n');
    expect(readFileSync(file, 'utf8')).toBe('NEW CHAIN\nNEW KEY\n');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(root)).toEqual(['svid.pem']);
  });

  it('fail/the disk fills up while the chain is written: FILE_UNWRITABLE naming the chain, exit 1, nothing replaced', async () => {
    const keyFile = join(root, 'keys', 'svid.key');
    const certDir = join(root, 'certs');
    const certFile = join(certDir, 'svid.crt');
    mkdirSync(join(root, 'keys'));
    mkdirSync(certDir);
    writeFileSync(keyFile, 'OLD KEY\n', { mode: 0o600 });
    writeFileSync(certFile, 'OLD CHAIN\n');
    fullAtWrite.prefix = certDir;
    const error = fromFileSystemError(
      await writeKeyAndChain(keyFile, certFile, 'NEW KEY\n', 'NEW CHAIN\n').catch((e: unknown) => e),
    );
    expect(readFileSync(keyFile, 'utf8')).toBe('OLD KEY\n');
    expect(readdirSync(certDir)).toEqual(['svid.crt']);
    expect(formatError(error)).toBe(
      `meshauth: cannot write ${certFile}: ENOSPC (write) [MESHAUTH_ERR_FILE_UNWRITABLE]`,
    );
    expect(exitCodeFor(error)).toBe(1);
  });

  // /tmp-like: anyone may create the key's name before the first `cert request` there. Taking that file's owner and
  // mode would give its creator the new key.
  it.skipIf(process.getuid?.() !== 0)(
    'ok/in a directory everyone can write, a file planted under the key name lends the new key neither owner nor mode',
    async () => {
      const shared = join(root, 'shared');
      mkdirSync(shared);
      chmodSync(shared, 0o1777);
      const keyFile = join(shared, 'svid.key');
      writeFileSync(keyFile, 'PLANTED\n', { mode: 0o644 });
      chownSync(keyFile, 4242, 4242);
      await writeKeyAndChain(keyFile, join(shared, 'svid.crt'), 'NEW KEY\n', 'NEW CHAIN\n');
      const key = statSync(keyFile);
      expect({ uid: key.uid, gid: key.gid, mode: key.mode & 0o777 }).toEqual({ uid: 0, gid: 0, mode: 0o600 });
    },
  );

  it('ok/under umask 000, a directory it creates for the files is 0755, not writable by others', async () => {
    const previous = process.umask(0);
    try {
      await writeKeyAndChain(join(root, 'a', 'svid.key'), join(root, 'a', 'b', 'svid.crt'), 'NEW KEY\n', 'NEW CHAIN\n');
    } finally {
      process.umask(previous);
    }
    expect(statSync(join(root, 'a')).mode & 0o777).toBe(0o755);
    expect(statSync(join(root, 'a', 'b')).mode & 0o777).toBe(0o755);
  });
});
