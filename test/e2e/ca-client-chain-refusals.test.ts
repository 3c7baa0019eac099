// `ca serve` asks every client for a certificate and lets those without one through (join-token bootstrap), so
// anyone who can reach it can present a chain. Node 24 crashes the whole process (SIGSEGV) when it turns a
// certificate whose key is on a curve without a NIST name (brainpool, secp256k1) into the object getPeerCertificate()
// returns. The TLS profile keeps such a key from signing a handshake, but a P-256 leaf can still come with such an
// "issuer": a chain anyone can make with openssl. The CA must refuse it (401, client_cert_unknown_ca) and keep
// serving. Run by curl, a real client, against the built CLI; on Node 20 the CA never crashed, on Node 24 it did.
// Then chains under the CA's own root that OpenSSL refuses for a reason Node has no name for (an intermediate without
// keyCertSign, one constrained to another trust domain): refused with that reason, not a bare `invalid`.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, meshauth, serveCa } from '../helpers/meshauth-cli.js';
import { available } from '../helpers/sidecar-harness.js';
import { until } from '../helpers/wait.js';

const HAVE_TOOLS = available('openssl') && available('curl');
if (!HAVE_TOOLS) console.warn('ca-client-chain-refusals: openssl or curl not on PATH, skipping');

let cwd: string;

function openssl(args: readonly string[]): void {
  execFileSync('openssl', args, { cwd, stdio: 'ignore' });
}

/** A self-signed CA whose key is on `curve`, as `name`.crt / `name`.key. */
function selfSignedCa(name: string, curve: string): void {
  openssl(['ecparam', '-name', curve, '-genkey', '-noout', '-out', `${name}.key`]);
  openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    `${name}.key`,
    '-subj',
    `/CN=${name}`,
    '-days',
    '1',
    '-addext',
    'basicConstraints=critical,CA:true',
    '-addext',
    'keyUsage=critical,keyCertSign',
    '-out',
    `${name}.crt`,
  ]);
}

/** A P-256 certificate `name` signed by `issuer` (its .crt and .key) with the extensions `ext`; returns the .csr. */
function signed(name: string, issuer: string, ext: string): string {
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`]);
  openssl(['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-out', `${name}.csr`]);
  writeFileSync(join(cwd, `${name}.ext`), ext);
  openssl([
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${issuer}.crt`,
    '-CAkey',
    `${issuer}.key`,
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.crt`,
  ]);
  return join(cwd, `${name}.csr`);
}

const LEAF_EXT =
  'subjectAltName=URI:spiffe://example.org/ns/shop/sa/orders\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth,serverAuth\n';

/** `name`-chain.pem: the leaf `name` and the issuers given, PEM. */
function chainFile(name: string, issuers: readonly string[]): string {
  const chain = join(cwd, `${name}-chain.pem`);
  writeFileSync(chain, [name, ...issuers].map((c) => readFileSync(join(cwd, `${c}.crt`), 'utf8')).join(''));
  return chain;
}

/** POST /v1/svid with `chain` and `name`.key as the client certificate (the leaf's own CSR as the body). */
function renew(url: string, name: string, chain: string): { status: string; body: string } {
  writeFileSync(join(cwd, 'renewal.json'), JSON.stringify({ csr: readFileSync(join(cwd, `${name}.csr`), 'utf8') }));
  return curl([
    '--cert',
    chain,
    '--key',
    join(cwd, `${name}.key`),
    '-H',
    'content-type: application/json',
    '--data-binary',
    '@renewal.json',
    `${url}/v1/svid`,
  ]);
}

/** curl's status and body for `args` against the CA, trusting its bundle. */
function curl(args: readonly string[]): { status: string; body: string } {
  const result = spawnSync(
    'curl',
    ['-sS', '--cacert', 'certs/bundle.pem', '-o', '-', '-w', '\n%{http_code}', ...args],
    {
      cwd,
      encoding: 'utf8',
      timeout: 20_000,
    },
  );
  const lines = result.stdout.trimEnd().split('\n');
  return { status: lines.pop() ?? '', body: lines.join('\n') };
}

beforeAll(async () => {
  assertBuilt(['src/ca', 'src/cli', 'src/tls']);
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-curve-'));
  expect((await meshauth(['ca', 'init', '--trust-domain', 'example.org'], { cwd })).code).toBe(0);
});
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

describe.skipIf(!HAVE_TOOLS)('ca serve: a client chain with an issuer on a curve without a NIST name', () => {
  it.each(['brainpoolP256r1', 'secp256k1'])(
    'fail/a P-256 leaf issued by a %s CA → 401 client_cert_unknown_ca, and the CA goes on serving',
    async (curve) => {
      selfSignedCa(`${curve}-ca`, curve);
      signed(`${curve}-leaf`, `${curve}-ca`, LEAF_EXT);
      const chain = chainFile(`${curve}-leaf`, [`${curve}-ca`]);
      const { serve, url } = await serveCa(cwd);
      try {
        const refused = renew(url, `${curve}-leaf`, chain);
        expect(refused.status, refused.body).toBe('401');
        expect(refused.body).toContain('MESHAUTH_ERR_CA_UNAUTHENTICATED');
        await until('the refusal logged with its reason', () =>
          serve.stderr().includes('"reason":"client_cert_unknown_ca"'),
        );
        const bundle = curl([`${url}/v1/bundle`]);
        expect(bundle.status).toBe('200');
      } finally {
        expect(await serve.stop()).toBe(0); // a crashed CA has no exit code (SIGSEGV)
      }
    },
  );
});

describe.skipIf(!HAVE_TOOLS)('ca serve: a chain under its own root that OpenSSL refuses', () => {
  it.each([
    [
      'an intermediate without keyCertSign',
      'client_cert_issuer_key_usage',
      'basicConstraints=critical,CA:true\nkeyUsage=critical,digitalSignature\n',
    ],
    [
      'an intermediate constrained to another trust domain',
      'client_cert_name_constraints',
      'basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign\nnameConstraints=critical,permitted;URI:other.org\n',
    ],
  ])('fail/%s → 401 %s, named by OpenSSL (Node has no code for it)', async (_what, reason, intermediateExt) => {
    const name = reason.replace('client_cert_', '');
    // The CA's own root signs the intermediate: only its flaw is wrong.
    signed(`${name}-int`, 'certs/root', intermediateExt);
    signed(`${name}-leaf`, `${name}-int`, LEAF_EXT);
    const chain = chainFile(`${name}-leaf`, [`${name}-int`]);
    const { serve, url } = await serveCa(cwd);
    try {
      const refused = renew(url, `${name}-leaf`, chain);
      expect(refused.status, refused.body).toBe('401');
      await until(`the refusal logged as ${reason}`, () => serve.stderr().includes(`"reason":"${reason}"`));
    } finally {
      expect(await serve.stop()).toBe(0);
    }
  });
});
