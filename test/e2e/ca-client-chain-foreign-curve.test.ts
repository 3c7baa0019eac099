// `ca serve` asks every client for a certificate and lets those without one through (join-token bootstrap), so
// anyone who can reach it can present a chain. Node 24 crashes the whole process (SIGSEGV) when it turns a
// certificate whose key is on a curve without a NIST name (brainpool, secp256k1) into the object getPeerCertificate()
// returns. The TLS profile keeps such a key from signing a handshake, but a P-256 leaf can still come with such an
// "issuer": a chain anyone can make with openssl. The CA must refuse it (401, client_cert_unknown_ca) and keep
// serving. Run by curl, a real client, against the built CLI; on Node 20 the CA never crashed, on Node 24 it did.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, meshauth, serveCa } from '../helpers/meshauth-cli.js';
import { available } from '../helpers/sidecar-harness.js';
import { until } from '../helpers/wait.js';

const HAVE_TOOLS = available('openssl') && available('curl');
if (!HAVE_TOOLS) console.warn('ca-client-chain-foreign-curve: openssl or curl not on PATH, skipping');

let cwd: string;

function openssl(args: readonly string[]): void {
  execFileSync('openssl', args, { cwd, stdio: 'ignore' });
}

/** certs/<curve>-chain.pem: a P-256 leaf with a workload ID, signed by a self-made CA whose key is on `curve`. */
function chainWithIssuerOn(curve: string): { chain: string; key: string } {
  openssl(['ecparam', '-name', curve, '-genkey', '-noout', '-out', `${curve}-ca.key`]);
  openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    `${curve}-ca.key`,
    '-subj',
    `/CN=${curve} issuer`,
    '-days',
    '1',
    '-addext',
    'basicConstraints=critical,CA:true',
    '-addext',
    'keyUsage=critical,keyCertSign',
    '-out',
    `${curve}-ca.crt`,
  ]);
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${curve}-leaf.key`]);
  openssl(['req', '-new', '-key', `${curve}-leaf.key`, '-subj', '/CN=leaf', '-out', `${curve}-leaf.csr`]);
  writeFileSync(
    join(cwd, `${curve}-leaf.ext`),
    'subjectAltName=URI:spiffe://example.org/ns/shop/sa/orders\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth,serverAuth\n',
  );
  openssl([
    'x509',
    '-req',
    '-in',
    `${curve}-leaf.csr`,
    '-CA',
    `${curve}-ca.crt`,
    '-CAkey',
    `${curve}-ca.key`,
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    `${curve}-leaf.ext`,
    '-out',
    `${curve}-leaf.crt`,
  ]);
  const chain = join(cwd, `${curve}-chain.pem`);
  writeFileSync(
    chain,
    readFileSync(join(cwd, `${curve}-leaf.crt`), 'utf8') + readFileSync(join(cwd, `${curve}-ca.crt`), 'utf8'),
  );
  return { chain, key: join(cwd, `${curve}-leaf.key`) };
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
      const { chain, key } = chainWithIssuerOn(curve);
      writeFileSync(
        join(cwd, 'renewal.json'),
        JSON.stringify({ csr: readFileSync(join(cwd, `${curve}-leaf.csr`), 'utf8') }),
      );
      const { serve, url } = await serveCa(cwd);
      try {
        const refused = curl([
          '--cert',
          chain,
          '--key',
          key,
          '-H',
          'content-type: application/json',
          '--data-binary',
          '@renewal.json',
          `${url}/v1/svid`,
        ]);
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
