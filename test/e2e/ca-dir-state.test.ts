// The CA directory through the built CLI when the user gets something wrong: a command refused for its flags changes
// nothing on disk; a state file edited into something else is named, with a stable code.
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, meshauth } from '../helpers/meshauth-cli.js';

let cwd: string;

// One `ca init` through the CLI, copied for each case: every case needs a CA directory of its own to spoil, and
// `ca init` is set-up here, not the subject (a process start and three key pairs per case were most of the file's
// time). The copy keeps bytes and modes, and ca.json names no path, so each copy is what `ca init` writes.
beforeAll(async () => {
  assertBuilt();
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-ca-dir-'));
  const result = await meshauth(['ca', 'init', '--trust-domain', 'example.org', '--dir', 'template'], { cwd });
  expect(result.code, result.stderr).toBe(0);
});
afterAll(() => {
  if (cwd !== undefined) rmSync(cwd, { recursive: true, force: true });
});

/** A fresh CA in `cwd/<dir>`: a copy of the one `ca init` wrote in beforeAll. */
function init(dir: string): string {
  cpSync(join(cwd, 'template'), join(cwd, dir), { recursive: true, errorOnExist: true, force: false });
  return join(cwd, dir);
}

/** Every file of the CA directory with its bytes. */
function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile())
      files[join(entry.parentPath, entry.name)] = readFileSync(join(entry.parentPath, entry.name), 'hex');
  }
  return files;
}

describe('ca rotate --k8s-secret with a name Kubernetes refuses', () => {
  it.each([
    ['--intermediate', ['--intermediate'], ['--k8s-secret', 'Bad_Name', '--namespace', 'meshauth']],
    ['--root', ['--root'], ['--k8s-secret', 'meshauth-ca', '--namespace', 'Shop']],
    [
      '--jwt-key',
      ['--jwt-key'],
      ['--k8s-secret', 'meshauth-ca', '--namespace', 'meshauth', '--bundle-namespace', 'a.b'],
    ],
  ])(
    'fail/%s → exit 2 MESHAUTH_ERR_USAGE before anything is rotated; the directory is unchanged',
    async (name, what, k8s) => {
      const dir = init(`bad-k8s-name${name}`);
      const before = snapshot(dir);
      const result = await meshauth(['ca', 'rotate', ...what, '--dir', dir, ...k8s], { cwd });
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toContain('[MESHAUTH_ERR_USAGE]');
      expect(result.stdout).toBe('');
      expect(snapshot(dir)).toEqual(before);
    },
  );
});

describe('a ca.json that is not a JSON object', () => {
  it.each([
    ['cut short', '{"trustDomain": "exa'],
    ['null', 'null\n'],
    ['a list', '["example.org"]\n'],
  ])(
    'fail/%s → every command that reads it exits 1 naming ca.json, MESHAUTH_ERR_CA_UNAVAILABLE',
    async (name, text) => {
      const dir = init(`state-${name.replace(/ /g, '-')}`);
      writeFileSync(join(dir, 'ca.json'), text);
      const commands = [
        ['ca', 'token', 'create', '--id', 'spiffe://example.org/web'],
        ['ca', 'issue', '--id', 'spiffe://example.org/web', '--out', join(dir, 'web')],
        ['ca', 'rotate', '--intermediate'],
      ];
      // One after another: `ca token create`, `ca issue` and `ca rotate` take the directory's lock, and one run beside the other would
      // print that it waits for the lock.
      const results = [];
      for (const args of commands) results.push(await meshauth([...args, '--dir', dir], { cwd }));
      for (const [index, result] of results.entries()) {
        expect(result.code, `${commands[index]?.join(' ')}: ${result.stderr}`).toBe(1);
        expect(result.stderr).toBe(
          `meshauth: CA directory ${dir} is inconsistent: ca.json is not a JSON object [MESHAUTH_ERR_CA_UNAVAILABLE]\n`,
        );
        expect(result.stdout).toBe('');
      }
    },
  );
});
