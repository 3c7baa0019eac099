// The agent's two input files on a real file system: a bundle and a token are read as they are; a missing, empty,
// oversized or non-regular file is MESHAUTH_ERR_FILE_UNREADABLE with a reason, at once (a FIFO without a writer or a
// device never blocks the process), and the token's content never appears in an error.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBundleFile, readTokenFile } from '../../src/agent/index.js';
import { MeshauthError } from '../../src/errors/index.js';
import { createTestRoot } from '../helpers/issuer-chain.js';
import { ENDLESS_DEVICE, fifoIn } from '../helpers/special-files.js';
import { TestCa } from '../helpers/test-ca.js';

let dir: string;
let ca: TestCa;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'meshauth-credential-files-'));
  ca = await TestCa.create();
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function failureOf(promise: Promise<unknown>): Promise<MeshauthError> {
  const error = await promise.then(
    () => new Error('expected the read to fail'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MeshauthError);
  expect((error as MeshauthError).code).toBe('MESHAUTH_ERR_FILE_UNREADABLE');
  return error as MeshauthError;
}

describe('agent input files', () => {
  it('pass/a bundle file and a token file are read (the token trimmed)', async () => {
    writeFileSync(join(dir, 'bundle.pem'), ca.bundlePem);
    writeFileSync(join(dir, 'token'), '  join-token-value\n');
    const bundle = await readBundleFile(join(dir, 'bundle.pem'), ca.trustDomain);
    expect(bundle.toPem()).toContain('BEGIN CERTIFICATE');
    expect(await readTokenFile(join(dir, 'token'))).toBe('join-token-value');
  });

  it('fail/missing token file → token_unreadable, naming the path and the cause', async () => {
    const error = await failureOf(readTokenFile(join(dir, 'absent')));
    expect(error.reason).toBe('token_unreadable');
    expect(error.message).toContain('absent');
    expect(error.message).toContain('ENOENT');
  });

  it('fail/empty token file → token_empty', async () => {
    writeFileSync(join(dir, 'empty'), ' \n');
    expect((await failureOf(readTokenFile(join(dir, 'empty')))).reason).toBe('token_empty');
  });

  it('fail/token file past 64 KiB → too_large, its content not in the message', async () => {
    const secret = `secret-${'s'.repeat(70 * 1024)}`;
    writeFileSync(join(dir, 'huge'), secret);
    const error = await failureOf(readTokenFile(join(dir, 'huge')));
    expect(error.reason).toBe('too_large');
    expect(error.message).not.toContain('secret-');
  });

  it('fail/a bundle file that holds no certificate → bundle_invalid', async () => {
    writeFileSync(join(dir, 'not-pem'), 'hello');
    expect((await failureOf(readBundleFile(join(dir, 'not-pem'), ca.trustDomain))).reason).toBe('bundle_invalid');
  });

  // A FIFO's open used to wait for a writer (a thread-pool thread per attempt), a device was read up to 2 GiB, a
  // directory failed as EISDIR.
  it.each([
    ['a FIFO with no writer', () => fifoIn(dir, 'fifo')],
    [
      'a directory',
      () => {
        const sub = join(dir, 'sub');
        mkdirSync(sub);
        return sub;
      },
    ],
    ['a device', () => ENDLESS_DEVICE],
  ])('fail/%s at the token path → token_unreadable at once, "not a regular file"', async (_name, make) => {
    const path = make();
    const error = await failureOf(readTokenFile(path));
    expect(error.reason).toBe('token_unreadable');
    // The code readRegularFile makes up (ENOTREG) is nothing a user can look up: the message says what it means.
    expect(error.message).toBe(`token file ${path}: not a regular file`);
  });

  it('fail/a directory at the bundle path → "trust bundle file <path>: not a regular file"', async () => {
    const sub = join(dir, 'bundle.d');
    mkdirSync(sub);
    const error = await failureOf(readBundleFile(sub, ca.trustDomain));
    expect(error.message).toBe(`trust bundle file ${sub}: not a regular file`);
  });

  // The file is read again at every renewal and bundle refresh on the thread that serves traffic: 1 MiB of
  // certificates (about 1,400) was parsed whole each time its text changed, 0.7 s. As many roots as the agent takes
  // from the CA (32) still pass, and a root given twice counts once.
  it('ok/32 different certificates, or one repeated; fail/33 → too_large, naming the count, the setting and the fix', async () => {
    const others = await Promise.all(
      Array.from({ length: 32 }, async () => (await createTestRoot()).cert.toString('pem')),
    );
    writeFileSync(join(dir, 'bundle-32.pem'), [ca.bundlePem, ...others.slice(1)].join('\n'));
    expect((await readBundleFile(join(dir, 'bundle-32.pem'), ca.trustDomain)).roots).toHaveLength(32);
    writeFileSync(join(dir, 'bundle-repeated.pem'), ca.bundlePem.repeat(40));
    // Parsed once, not forty times (a 1 MiB file of one root would otherwise be parsed whole at each renewal).
    expect((await readBundleFile(join(dir, 'bundle-repeated.pem'), ca.trustDomain)).roots).toHaveLength(1);
    writeFileSync(join(dir, 'bundle-33.pem'), [ca.bundlePem, ...others].join('\n'));
    const error = await failureOf(readBundleFile(join(dir, 'bundle-33.pem'), ca.trustDomain, 'ca.bundle'));
    expect(error.reason).toBe('too_large');
    expect(error.detail).toEqual({ key: 'ca.bundle' });
    expect(error.message).toBe(
      `ca.bundle: trust bundle ${join(dir, 'bundle-33.pem')} holds 33 certificates, more than 32: give it the CA's ` +
        'bundle.pem, not a system CA bundle or a chain',
    );
  });
});
