// Lays a Kubernetes Secret out on disk the way the kubelet mounts it: the files in a timestamped directory, a
// `..data` symlink to it, and one symlink per key (`root.crt -> ..data/root.crt`); files 0444 and directories 0555
// (defaultMode 0444, read-only volume). An update swaps `..data` atomically, as the kubelet does.
import { chmodSync, mkdirSync, readdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function mountSecret(dir: string, data: Readonly<Record<string, string>>): void {
  mkdirSync(dir, { recursive: true });
  const stamp = `..${new Date().toISOString().replace(/[-:.]/g, '_')}_${Math.random().toString(36).slice(2, 8)}`;
  const version = join(dir, stamp);
  mkdirSync(version);
  for (const [key, base64] of Object.entries(data)) {
    writeFileSync(join(version, key), Buffer.from(base64, 'base64'), { mode: 0o444 });
  }
  chmodSync(version, 0o555);
  const tmp = join(dir, '..data_tmp');
  symlinkSync(stamp, tmp);
  renameSync(tmp, join(dir, '..data'));
  const present = new Set(readdirSync(dir));
  for (const key of Object.keys(data)) {
    if (!present.has(key)) symlinkSync(join('..data', key), join(dir, key));
  }
}

/** Every entry under `dir` (names and sizes), to show nothing was written. */
export function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (path: string, prefix: string) => {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const name = `${prefix}${entry.name}`;
      out.push(name);
      if (entry.isDirectory()) walk(join(path, entry.name), `${name}/`);
    }
  };
  walk(dir, '');
  return out.sort();
}
