import { chmodSync, mkdtempSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fileVersions } from '../../src/platform/index.js';

describe('fileVersions', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'file-versions-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('stays the same while nothing changes, and changes when a file is rewritten, replaced or touched', () => {
    const a = join(dir, 'a.pem');
    const b = join(dir, 'b.pem');
    writeFileSync(a, 'one');
    writeFileSync(b, 'two');
    const first = fileVersions([a, b]);
    expect(fileVersions([a, b])).toBe(first);

    writeFileSync(b, 'two, longer');
    const rewritten = fileVersions([a, b]);
    expect(rewritten).not.toBe(first);

    writeFileSync(join(dir, 'a.new'), 'one');
    renameSync(join(dir, 'a.new'), a); // same size and maybe the same mtime: another inode
    const replaced = fileVersions([a, b]);
    expect(replaced).not.toBe(rewritten);

    utimesSync(a, new Date(2_000_000_000_000), new Date(2_000_000_000_000));
    expect(fileVersions([a, b])).not.toBe(replaced);
  });

  it('names a missing file by its errno instead of throwing, and sees it appear', () => {
    const a = join(dir, 'a.pem');
    expect(fileVersions([a])).toBe('missing:ENOENT');
    expect(fileVersions([join(a, 'below-a-file')])).toBe('missing:ENOENT');
    writeFileSync(a, 'x');
    expect(fileVersions([a])).not.toContain('missing');
    // ENOTDIR, which Node 24's throwIfNoEntry counts as no entry (ENOENT) and Node 20 does not.
    expect(fileVersions([join(a, 'below-a-file')])).toMatch(/^missing:(ENOTDIR|ENOENT)$/);
  });

  it('follows a symlink: a Secret volume swapping its ..data link is a change', () => {
    for (const version of ['v1', 'v2']) {
      writeFileSync(join(dir, `${version}.pem`), 'same size');
    }
    const link = join(dir, 'tls.pem');
    symlinkSync(join(dir, 'v1.pem'), link);
    const before = fileVersions([link]);
    symlinkSync(join(dir, 'v2.pem'), join(dir, 'tls.pem.tmp'));
    renameSync(join(dir, 'tls.pem.tmp'), link);
    expect(fileVersions([link])).not.toBe(before);
  });

  it('with ctime, also sees a change of mode alone', () => {
    const a = join(dir, 'policy.yaml');
    writeFileSync(a, 'rules: []');
    const plain = fileVersions([a]);
    const withCtime = fileVersions([a], { ctime: true });
    const until = Date.now() + 5_000;
    // ctime has the file system's granularity: change the mode until the change time moves (bounded).
    let mode = 0o600;
    while (fileVersions([a], { ctime: true }) === withCtime && Date.now() < until) {
      mode = mode === 0o600 ? 0o640 : 0o600;
      chmodSync(a, mode);
    }
    expect(fileVersions([a], { ctime: true })).not.toBe(withCtime);
    expect(fileVersions([a])).toBe(plain);
  });
});
