// `meshauth cert renew` and `cert token` authenticate to the CA with --cert and --key. A key that is not the
// certificate's (two files mixed up) is the user's input to fix: exit 2 naming both files, before the CA is asked.
// It used to reach the CA, fail the TLS handshake there and be reported as the CA being unavailable (exit 1).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, meshauth } from '../helpers/meshauth-cli.js';

let cwd: string;

beforeAll(async () => {
  assertBuilt(['src/ca', 'src/cli', 'src/agent']);
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-key-pair-'));
  expect((await meshauth(['ca', 'init', '--trust-domain', 'example.org'], { cwd })).code).toBe(0);
  const issued = await Promise.all(
    ['web', 'db'].map((name) => meshauth(['ca', 'issue', '--id', `spiffe://example.org/${name}`], { cwd })),
  );
  for (const result of issued) expect(result.code, result.stderr).toBe(0);
});
afterAll(() => {
  if (cwd !== undefined) rmSync(cwd, { recursive: true, force: true });
});

// Nothing listens on port 1: the command must refuse before it connects.
const CA = ['--ca-url', 'https://127.0.0.1:1', '--bundle', 'certs/bundle.pem'];

describe('cert renew / cert token with a --key that is not the --cert key', () => {
  it.each([
    ['renew', ['cert', 'renew', ...CA, '--cert', 'web.crt', '--key', 'db.key']],
    [
      'token',
      ['cert', 'token', ...CA, '--cert', 'web.crt', '--key', 'db.key', '--audience', 'https://api.example.com'],
    ],
  ])('fail/cert %s → exit 2 MESHAUTH_ERR_CONFIG_INVALID naming both files', async (_name, args) => {
    const result = await meshauth(args, { cwd });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toBe(
      'meshauth: --key db.key is not the key of the certificate in --cert web.crt [MESHAUTH_ERR_CONFIG_INVALID]\n',
    );
    expect(result.stdout).toBe('');
  });
});

// Files given in the wrong places: the refusal names the file it is about (it used to say only "no PEM
// certificate found" or "private key cannot be parsed").
describe('cert request / renew / token with a file that is not what its flag takes', () => {
  it.each([
    [
      'renew --cert KEY',
      ['cert', 'renew', ...CA, '--cert', 'web.key', '--key', 'web.key'],
      'web.key: no PEM certificate found [MESHAUTH_ERR_SVID_MALFORMED]',
    ],
    [
      'renew --key CERT',
      ['cert', 'renew', ...CA, '--cert', 'web.crt', '--key', 'web.crt'],
      'web.crt: private key cannot be parsed [MESHAUTH_ERR_KEY_TYPE]',
    ],
    [
      'request --bundle KEY',
      ['cert', 'request', '--ca-url', 'https://127.0.0.1:1', '--bundle', 'web.key', '--token', 'x', '--out', 'x'],
      'web.key: no PEM certificate found [MESHAUTH_ERR_SVID_MALFORMED]',
    ],
    [
      'token --bundle KEY',
      [
        'cert',
        'token',
        '--ca-url',
        'https://127.0.0.1:1',
        '--bundle',
        'web.key',
        '--cert',
        'web.crt',
        '--key',
        'web.key',
        '--audience',
        'https://api.example.com',
      ],
      'web.key: no PEM certificate found [MESHAUTH_ERR_SVID_MALFORMED]',
    ],
  ])('fail/cert %s → exit 2, the message names the file', async (_name, args, message) => {
    const result = await meshauth(args, { cwd });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toBe(`meshauth: ${message}\n`);
    expect(result.stdout).toBe('');
  });
});
