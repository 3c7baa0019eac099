// `cert renew` (and `cert token`) with a certificate another CA issued (another `ca init` of the same trust domain,
// or one of another trust domain): the CA refused it with "credential rejected" alone, which says neither what is
// wrong nor what to do. The CLI holds the --bundle the CA is trusted by, so it checks the certificate against it
// and says so: at once for another trust domain, once the CA refuses it for a root the bundle lacks (the CA may trust
// it still, cert-renew-new-root-bundle.test.ts); a refusal it could not foresee (a --bundle with a root the CA does
// not trust) names the certificate too.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, meshauth, meshauthSteps, type RunningCli, serveCa } from '../helpers/meshauth-cli.js';

const WEB = 'spiffe://example.org/ns/shop/sa/web';
const NEW_SVID =
  'get a new SVID from this CA with `meshauth cert request` and a join token ' +
  '(`meshauth ca token create --id <spiffe-id>`)';
let cwd: string;
let serve: RunningCli;
let url: string;

beforeAll(async () => {
  assertBuilt(['src/cli', 'src/ca', 'src/agent']);
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-renew-other-ca-'));
  // Three CAs, then one certificate of each: each step's commands side by side (six in a row outlast the hook).
  const steps = [
    [
      ['ca', 'init', '--trust-domain', 'example.org', '--dir', 'certs'],
      ['ca', 'init', '--trust-domain', 'example.org', '--dir', 'other'],
      ['ca', 'init', '--trust-domain', 'other.org', '--dir', 'other-td'],
    ],
    [
      ['ca', 'issue', '--id', WEB, '--out', 'web'],
      ['ca', 'issue', '--id', WEB, '--out', 'other-web', '--dir', 'other'],
      ['ca', 'issue', '--id', 'spiffe://other.org/ns/shop/sa/web', '--out', 'td-web', '--dir', 'other-td'],
    ],
  ];
  await meshauthSteps(steps, cwd);
  // Both roots of example.org: the other CA's certificate chains to it, and the CA's own certificate does too.
  writeFileSync(
    join(cwd, 'both.pem'),
    readFileSync(join(cwd, 'certs/bundle.pem'), 'utf8') + readFileSync(join(cwd, 'other/bundle.pem'), 'utf8'),
  );
  ({ serve, url } = await serveCa(cwd));
});
afterAll(async () => {
  await serve?.stop();
  if (cwd !== undefined) rmSync(cwd, { recursive: true, force: true });
});

const renew = (prefix: string, bundle = 'certs/bundle.pem') =>
  meshauth(
    ['cert', 'renew', '--ca-url', url, '--bundle', bundle, '--cert', `${prefix}.crt`, '--key', `${prefix}.key`],
    { cwd },
  );

describe('cert renew with a certificate of another CA', () => {
  it('fail/issued under another root of the trust domain → exit 2 MESHAUTH_ERR_SVID_UNKNOWN_CA, what to do', async () => {
    const before = readFileSync(join(cwd, 'other-web.crt'), 'utf8');
    const result = await renew('other-web');
    expect(result.code, result.stderr).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      'meshauth: --cert other-web.crt was not issued under the roots of --bundle certs/bundle.pem (certificate chain ' +
        'does not lead to a trusted root), so the CA trusted by that bundle does not trust it and cannot renew it: ' +
        "if the certificate is another CA's (another `ca init`, or a root since retired), " +
        `${NEW_SVID}; otherwise give --ca-url and --bundle of the CA that issued it [MESHAUTH_ERR_SVID_UNKNOWN_CA]\n`,
    );
    expect(readFileSync(join(cwd, 'other-web.crt'), 'utf8')).toBe(before);
  });

  it('fail/of another trust domain → exit 2 MESHAUTH_ERR_SVID_TRUST_DOMAIN naming both trust domains', async () => {
    const result = await renew('td-web');
    expect(result.code, result.stderr).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      'meshauth: --cert td-web.crt holds spiffe://other.org/ns/shop/sa/web of trust domain other.org, but --bundle ' +
        'certs/bundle.pem is the CA of example.org, which trusts no other trust domain and cannot renew it: give ' +
        '--ca-url and --bundle of the CA of other.org that issued it, or, for an identity in example.org, ' +
        `${NEW_SVID} [MESHAUTH_ERR_SVID_TRUST_DOMAIN]\n`,
    );
  });

  it('fail/cert token with another root’s certificate → the same check, worded for a token', async () => {
    const result = await meshauth(
      [
        'cert',
        'token',
        '--ca-url',
        url,
        '--bundle',
        'certs/bundle.pem',
        '--cert',
        'other-web.crt',
        '--key',
        'other-web.key',
        '--audience',
        'https://api.example.com',
      ],
      { cwd },
    );
    expect(result.code, result.stderr).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(
      'so the CA trusted by that bundle does not trust it and cannot give a token for it',
    );
    expect(result.stderr).toMatch(/\[MESHAUTH_ERR_SVID_UNKNOWN_CA\]\n$/);
  });

  it('fail/a --bundle with a root the CA does not trust → the CA’s 401 says which certificate and what to do', async () => {
    const result = await renew('other-web', 'both.pem');
    expect(result.code, result.stderr).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      `meshauth: CA ${url}/v1/svid answered 401 MESHAUTH_ERR_CA_UNAUTHENTICATED: credential rejected: the CA does ` +
        'not trust the certificate in --cert other-web.crt, though it chains to --bundle both.pem: it was not issued ' +
        "under the CA's own roots (another CA's, or a root the CA has retired, still in that bundle): give --ca-url " +
        `and --bundle of the CA that issued it, or ${NEW_SVID} [MESHAUTH_ERR_CA_UNAUTHENTICATED]\n`,
    );
  });

  it('ok/the CA’s own certificate renews', async () => {
    const result = await renew('web');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`issued ${WEB}`);
  });
});
