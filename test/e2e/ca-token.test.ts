// JWT-SVIDs from a real `meshauth ca serve` (POST /v1/token): curl with an SVID from `cert request`, and `meshauth cert
// token` printing only the token, so `TOKEN=$(meshauth cert token …)` works.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, meshauth, type RunningCli, serveCa } from '../helpers/meshauth-cli.js';

const ID = 'spiffe://example.org/ns/shop/sa/reporter';
const AUDIENCE = 'https://api.example.com';
let cwd: string;
let serve: RunningCli;
let url: string;

beforeAll(async () => {
  assertBuilt();
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-token-'));
  expect((await meshauth(['ca', 'init', '--trust-domain', 'example.org'], { cwd })).code).toBe(0);
  ({ serve, url } = await serveCa(cwd, { args: ['--jwt-ttl', '2m'] }));
  const token = await meshauth(['ca', 'token', 'create', '--id', ID], { cwd });
  const request = await meshauth(
    [
      'cert',
      'request',
      '--ca-url',
      url,
      '--bundle',
      'certs/bundle.pem',
      '--token',
      token.stdout.trim(),
      '--out',
      'svid',
    ],
    { cwd },
  );
  expect(request.code, request.stderr).toBe(0);
});
afterAll(async () => {
  await serve?.stop();
  if (cwd !== undefined) rmSync(cwd, { recursive: true, force: true });
});

function claimsOf(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

describe('JWT-SVIDs from ca serve', () => {
  it('ok/ca init writes jwt.key 0600', () => {
    expect(statSync(join(cwd, 'certs', 'jwt.key')).mode & 0o777).toBe(0o600);
  });

  it('ok/curl --cacert bundle.pem --cert svid.crt --key svid.key -d grant_type=client_credentials -d audience=…', (context) => {
    if (spawnSync('curl', ['--version']).error !== undefined) {
      console.info('skipped: curl is not installed');
      context.skip();
    }
    const result = spawnSync(
      'curl',
      [
        '-sS',
        '--fail',
        '--cacert',
        'certs/bundle.pem',
        '--cert',
        'svid.crt',
        '--key',
        'svid.key',
        '-d',
        'grant_type=client_credentials',
        '-d',
        `audience=${AUDIENCE}`,
        `${url}/v1/token`,
      ],
      { cwd, encoding: 'utf8' },
    );
    expect(result.status, result.stderr).toBe(0);
    const json = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(json).toMatchObject({ token_type: 'Bearer', expires_in: 120 });
    expect(claimsOf(json.access_token as string)).toMatchObject({ sub: ID, aud: [AUDIENCE], iss: url });
  });

  it('ok/meshauth cert token prints only the token', async () => {
    const result = await meshauth(
      [
        'cert',
        'token',
        '--ca-url',
        url,
        '--bundle',
        'certs/bundle.pem',
        '--cert',
        'svid.crt',
        '--key',
        'svid.key',
        '--audience',
        AUDIENCE,
      ],
      { cwd },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    expect(claimsOf(result.stdout.trim())).toMatchObject({ sub: ID, aud: [AUDIENCE] });
  });

  // cert token checks --cert against --bundle before it dials: a --bundle holding the other CA's root too lets the
  // certificate reach the CA, whose own refusal is what this covers.
  it('fail/cert token with a certificate the CA did not issue → exit 2, invalid client', async () => {
    expect((await meshauth(['ca', 'init', '--trust-domain', 'example.org', '--dir', 'other'], { cwd })).code).toBe(0);
    const issued = await meshauth(['ca', 'issue', '--id', ID, '--out', 'foreign', '--dir', 'other'], { cwd });
    expect(issued.code, issued.stderr).toBe(0);
    const roots = ['certs', 'other'].map((dir) => readFileSync(join(cwd, dir, 'bundle.pem'), 'utf8'));
    writeFileSync(join(cwd, 'both.pem'), roots.join(''));
    const result = await meshauth(
      [
        'cert',
        'token',
        '--ca-url',
        url,
        '--bundle',
        'both.pem',
        '--cert',
        'foreign.crt',
        '--key',
        'foreign.key',
        '--audience',
        AUDIENCE,
      ],
      { cwd },
    );
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('MESHAUTH_ERR_CA_UNAUTHENTICATED');
    expect(result.stderr).toContain('the CA does not trust the certificate in --cert foreign.crt');
  });

  it('fail/--jwt-ttl 6m → exit 2', async () => {
    const result = await meshauth(['ca', 'serve', '--listen', '127.0.0.1:0', '--jwt-ttl', '6m'], { cwd });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('MESHAUTH_ERR_TTL_OUT_OF_RANGE');
  });
});
