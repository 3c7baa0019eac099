// A path the CLI must create under a regular file (`ca init --dir`, `ca issue --out`) is refused with one line,
// the path and the errno, [MESHAUTH_ERR_FILE_UNWRITABLE] and exit 2. It used to print Node's raw
// "EEXIST: file already exists, mkdir …" without a code and exit 1, as for a runtime failure.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, meshauth } from '../helpers/meshauth-cli.js';

let cwd: string;
beforeAll(async () => {
  assertBuilt(['src/cli', 'src/ca']);
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-unwritable-'));
  writeFileSync(join(cwd, 'plain-file'), 'not a directory\n');
  const init = await meshauth(['ca', 'init', '--trust-domain', 'example.org', '--dir', 'certs'], { cwd });
  expect(init.code, init.stderr).toBe(0);
});
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

describe('paths the CLI cannot write', () => {
  it('fail/ca init --dir under a regular file → exit 2, FILE_UNWRITABLE naming the path', async () => {
    const result = await meshauth(['ca', 'init', '--trust-domain', 'example.org', '--dir', 'plain-file/ca'], { cwd });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toBe(
      'meshauth: cannot write plain-file/ca: ENOTDIR (mkdir) [MESHAUTH_ERR_FILE_UNWRITABLE]\n',
    );
  });

  it('fail/ca issue --out under a regular file → exit 2, FILE_UNWRITABLE naming the path', async () => {
    const args = ['ca', 'issue', '--dir', 'certs', '--id', 'spiffe://example.org/ns/a/sa/b', '--out', 'plain-file/b'];
    const result = await meshauth(args, { cwd });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain('meshauth: cannot write plain-file: EEXIST (mkdir) [MESHAUTH_ERR_FILE_UNWRITABLE]');
    expect(result.stdout).toBe('');
  });

  // A directory that exists but takes no new file (read-only, another user's; /sys refuses it even to root): the
  // failure is creating the temporary file the write goes through. It used to print Node's raw text with that
  // file's random name ("EACCES: permission denied, open '/sys/.9ae43cebea92.tmp'"), no code, exit 1.
  it.each([
    ['ca init --dir', ['ca', 'init', '--trust-domain', 'example.org', '--dir', '/sys/kernel'], '/sys/kernel/root.key'],
    [
      'ca issue --out',
      ['ca', 'issue', '--dir', 'certs', '--id', 'spiffe://example.org/b', '--out', '/sys/b'],
      '/sys/b.key',
    ],
  ])(
    'fail/%s in a directory that takes no new file → exit 2, FILE_UNWRITABLE naming the file',
    async (_name, args, file) => {
      const result = await meshauth(args, { cwd });
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toMatch(
        new RegExp(
          `^meshauth: cannot write ${file}: (EACCES|EROFS|EPERM) \\(write\\) \\[MESHAUTH_ERR_FILE_UNWRITABLE\\]\\n$`,
        ),
      );
      expect(result.stdout).toBe('');
    },
  );
});

// --out is a path prefix: one without a file name (meant as a directory, or empty) is a usage error before anything
// is written. `--out outdir/` used to fail on a temporary file's random name (ENOENT, exit 1) and `--out ""` wrote
// the hidden files .crt and .key into the working directory.
describe('--out without a file name', () => {
  const issue = (out: string) => ['ca', 'issue', '--dir', 'certs', '--id', 'spiffe://example.org/c', '--out', out];
  const request = (out: string) =>
    ['cert', 'request', '--ca-url', 'https://127.0.0.1:1', '--bundle', 'certs/bundle.pem', '--token', 'x'].concat([
      '--out',
      out,
    ]);
  it.each([
    ['ca issue --out outdir/', issue('outdir/'), 'outdir/'],
    ['ca issue --out ""', issue(''), ''],
    ['cert request --out outdir/', request('outdir/'), 'outdir/'],
  ])('fail/%s → exit 2 MESHAUTH_ERR_USAGE; nothing written', async (_name, args, out) => {
    const before = readdirSync(cwd).sort();
    const result = await meshauth(args, { cwd });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toBe(
      `meshauth: --out ${JSON.stringify(out)} has no file name: it is a path prefix (--out certs/web writes ` +
        'certs/web.crt and certs/web.key) [MESHAUTH_ERR_USAGE]\n',
    );
    expect(readdirSync(cwd).sort()).toEqual(before);
  });
});
