// `meshauth cert renew` and `cert token` authenticate to the CA with --cert and --key. A key that is not the
// certificate's (two files mixed up, or a pair torn by a writer stopped between its two files) is the user's input to
// fix: exit 2 naming both files and how to get a new pair, before the CA is asked. It used to reach the CA, fail the
// TLS handshake there and be reported as the CA being unavailable (exit 1), and a torn combined file still did.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

const FIX =
  ', so this pair cannot authenticate to the CA (a write of one file was cut short, or two files were mixed up): ' +
  'give the matching files, or get a new SVID with `meshauth cert request` (a new join token) or `meshauth ca issue` ' +
  '[MESHAUTH_ERR_KEY_MISMATCH]\n';

/** web's chain and db's key in one file, in either order: a combined file torn between two issuances. */
function tornCombined(name: string, keyFirst: boolean): string {
  const chain = readFileSync(join(cwd, 'web.crt'), 'utf8');
  const key = readFileSync(join(cwd, 'db.key'), 'utf8');
  writeFileSync(join(cwd, name), keyFirst ? key + chain : chain + key, { mode: 0o600 });
  return name;
}

const TOKEN_ARGS = ['--audience', 'https://api.example.com'];

describe('cert renew / cert token with a --key that is not the --cert key', () => {
  it.each([
    ['renew', ['cert', 'renew', ...CA, '--cert', 'web.crt', '--key', 'db.key']],
    ['token', ['cert', 'token', ...CA, '--cert', 'web.crt', '--key', 'db.key', ...TOKEN_ARGS]],
  ])('fail/cert %s → exit 2 MESHAUTH_ERR_KEY_MISMATCH naming both files and the way out', async (_name, args) => {
    const result = await meshauth(args, { cwd });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toBe(`meshauth: --key db.key does not belong to the certificate in --cert web.crt${FIX}`);
    expect(result.stdout).toBe('');
  });

  it.each([
    ['renew, chain first', 'renew', false],
    ['renew, key first', 'renew', true],
    ['token, chain first', 'token', false],
  ] as const)(
    'fail/cert %s: a torn combined file → exit 2 MESHAUTH_ERR_KEY_MISMATCH',
    async (_name, command, keyFirst) => {
      const file = tornCombined(`torn-${command}-${keyFirst ? 'key' : 'chain'}-first.pem`, keyFirst);
      const args = ['cert', command, ...CA, '--cert', file, '--key', file, ...(command === 'token' ? TOKEN_ARGS : [])];
      const result = await meshauth(args, { cwd });
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toBe(`meshauth: the key in ${file} does not belong to the certificate in it${FIX}`);
      expect(result.stdout).toBe('');
    },
  );
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
