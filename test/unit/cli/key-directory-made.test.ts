// The directories `cert request` made for --out, and takes back when the request fails: those mkdir made, and no
// other. A path through a symlink and `..` names, once resolved by hand, other directories than mkdir made: empty
// ones the user had made there were removed, and the ones made were left.
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeKeyDirectory, removeEmptyDirectories } from '../../../src/cli/key-pair-files.js';

let root: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'meshauth-key-directory-'));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('makeKeyDirectory and removeEmptyDirectories', () => {
  it('ok/the directories made are the ones taken back, and a directory that was there stays', async () => {
    mkdirSync(join(root, 'kept'));
    const dir = join(root, 'kept', 'made', 'for');
    const created = await makeKeyDirectory(dir);
    expect(created).toEqual([dir, join(root, 'kept', 'made')]);
    await removeEmptyDirectories(created);
    expect(existsSync(join(root, 'kept', 'made'))).toBe(false);
    expect(existsSync(join(root, 'kept'))).toBe(true);
  });

  it('ok/a directory that exists already is not claimed', async () => {
    mkdirSync(join(root, 'there'));
    expect(await makeKeyDirectory(join(root, 'there'))).toEqual([]);
  });

  it('fail/through a symlink and `..`, the user’s empty directories of the same resolved name stay', async () => {
    // work/link -> elsewhere/x: work/link/../new is elsewhere/new to mkdir, work/new to path.resolve.
    mkdirSync(join(root, 'elsewhere', 'x'), { recursive: true });
    mkdirSync(join(root, 'work', 'new', 'a'), { recursive: true });
    symlinkSync(join(root, 'elsewhere', 'x'), join(root, 'work', 'link'));
    // Spelled by hand: join() would drop the `..` as path.resolve does.
    const created = await makeKeyDirectory(`${root}/work/link/../new/a`);
    expect(existsSync(join(root, 'elsewhere', 'new', 'a'))).toBe(true);
    await removeEmptyDirectories(created);
    expect(existsSync(join(root, 'work', 'new', 'a'))).toBe(true);
    expect(existsSync(join(root, 'elsewhere', 'new'))).toBe(false);
    expect(existsSync(join(root, 'elsewhere', 'x'))).toBe(true);
  });
});
