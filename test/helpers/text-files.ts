// Files of chosen bytes for tests of the text readers: `bytes` joins UTF-8 text and raw byte values (a Latin-1 é,
// a byte-order mark), and `scratchFiles` writes them into a temporary directory removed after the file's tests.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

/** Strings as UTF-8, arrays as the bytes they list, in order. */
export const bytes = (...parts: (string | number[])[]): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));

/**
 * A new temporary directory named from `prefix`, removed after all tests of the file (registers `afterAll`); the
 * returned function writes `content` to `name` in it and returns the file's path.
 */
export function scratchFiles(prefix: string): (name: string, content: Buffer | string) => string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return (name, content) => {
    const file = join(dir, name);
    writeFileSync(file, content);
    return file;
  };
}
