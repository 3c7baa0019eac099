// node:fs/promises as on a full disk under one path prefix: open() succeeds and the first write of the file fails
// with ENOSPC and no path, as Node raises it for write(2). For a test's vi.mock factory:
//   vi.mock('node:fs/promises', async (original) =>
//     (await import('../../helpers/full-disk-fs.js')).fullDiskFsPromises(await original()));
// and `fullAtWrite.prefix = dir` (undefined: room again) from the same module.
import type * as FsPromises from 'node:fs/promises';

/** Files opened under this prefix take no data. */
export const fullAtWrite: { prefix: string | undefined } = { prefix: undefined };

export function fullDiskFsPromises(fs: typeof FsPromises): typeof FsPromises {
  const open = ((path: Parameters<typeof fs.open>[0], ...rest: unknown[]) => {
    const opened = (fs.open as (...args: unknown[]) => ReturnType<typeof fs.open>)(path, ...rest);
    if (fullAtWrite.prefix === undefined || !String(path).startsWith(fullAtWrite.prefix)) return opened;
    return opened.then((handle) =>
      Object.assign(handle, {
        writeFile: () =>
          Promise.reject(
            Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' }),
          ),
      }),
    );
  }) as typeof fs.open;
  return { ...fs, default: { ...fs, open }, open } as typeof FsPromises;
}
