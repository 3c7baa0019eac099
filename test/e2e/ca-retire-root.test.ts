// The last step of a root rotation with the built CLI: `ca rotate --root --retire` refuses while SVIDs under the
// previous root may still be valid, retires it with --force (or later), and leaves a bundle that openssl reads as
// exactly the active root.
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, meshauth } from '../helpers/meshauth-cli.js';

let cwd: string;
const dir = () => join(cwd, 'ca');
const rotate = (...flags: string[]) => meshauth(['ca', 'rotate', '--dir', dir(), ...flags], { cwd });

/** SHA-256 fingerprints of the certificates in a PEM file, via openssl (one per block). */
function fingerprints(file: string): string[] {
  const blocks = readFileSync(file, 'utf8').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((pem) =>
    execFileSync('openssl', ['x509', '-noout', '-fingerprint', '-sha256'], { input: pem }).toString().trim(),
  );
}

// One `ca init` through the CLI, copied into the two CA directories the cases rotate (bytes and modes kept; ca.json
// names no path): the second directory's `ca init` was a process start and three key pairs of set-up.
const template = () => join(cwd, 'template');

beforeAll(async () => {
  assertBuilt();
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-retire-'));
  const init = await meshauth(['ca', 'init', '--trust-domain', 'example.org', '--dir', template()], { cwd });
  expect(init.code, init.stderr).toBe(0);
  cpSync(template(), dir(), { recursive: true, errorOnExist: true, force: false });
});
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

describe('meshauth ca rotate --root --retire', () => {
  it('fail/nothing to retire before a root was activated', async () => {
    const result = await rotate('--root', '--retire');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('no previous root to retire');
  });

  it('fail/--retire and --force go with --root', async () => {
    expect((await rotate('--retire')).code).toBe(2);
    expect((await rotate('--intermediate', '--force')).code).toBe(2);
  });

  it('ok/publish, activate, refuse while old SVIDs may live, retire with --force', async () => {
    const oldRoot = fingerprints(join(dir(), 'root.crt'));
    expect((await rotate('--root')).code).toBe(0);
    const activated = await rotate('--root', '--activate');
    expect(activated.code, activated.stderr).toBe(0);
    // Activated right after publishing: done, with a warning that sidecars may not have the new root yet.
    expect(activated.stderr).toMatch(
      /warning: the new root was published \d+ s ago; sidecars fetch the bundle every 5 minutes/,
    );
    expect(fingerprints(join(dir(), 'bundle.pem'))).toHaveLength(2);

    const early = await rotate('--root', '--retire');
    expect(early.code).toBe(2);
    expect(early.stderr).toMatch(/may be valid until \d{4}-\d\d-\d\dT.*--force/s);
    expect(fingerprints(join(dir(), 'bundle.pem'))).toHaveLength(2);

    const retired = await rotate('--root', '--retire', '--force');
    expect(retired.code, retired.stderr).toBe(0);
    expect(retired.stdout).toContain('previous root removed from bundle.pem');
    expect(retired.stdout).toContain('1 root(s) in the bundle');
    expect(fingerprints(join(dir(), 'bundle.pem'))).toEqual(fingerprints(join(dir(), 'root.crt')));
    expect(fingerprints(join(dir(), 'root-retired.crt'))).toEqual(oldRoot);
    expect(existsSync(join(dir(), 'root-previous.key'))).toBe(false);
    expect(existsSync(join(dir(), 'root-previous.crt'))).toBe(false);
    // The intermediate still chains to what the bundle holds.
    execFileSync('openssl', ['verify', '-CAfile', join(dir(), 'bundle.pem'), join(dir(), 'intermediate.crt')]);

    expect((await rotate('--root', '--retire', '--force')).code).toBe(2);
  });

  it('fail/a bundle that holds only the previous root is refused, and nothing is deleted', async () => {
    const other = join(cwd, 'ca-2');
    const run = (...args: string[]) => meshauth(['ca', ...args, '--dir', other], { cwd });
    cpSync(template(), other, { recursive: true, errorOnExist: true, force: false });
    expect((await run('rotate', '--root')).code).toBe(0);
    expect((await run('rotate', '--root', '--activate')).code).toBe(0);
    copyFileSync(join(other, 'root-previous.crt'), join(other, 'bundle.pem'));
    const refused = await run('rotate', '--root', '--retire', '--force');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('bundle.pem holds no root besides the previous one');
    expect(existsSync(join(other, 'root-previous.key'))).toBe(true);
    expect(fingerprints(join(other, 'bundle.pem'))).toEqual(fingerprints(join(other, 'root-previous.crt')));
  });
});
