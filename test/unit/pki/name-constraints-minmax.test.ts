// validateX509Svid refuses a chain through an issuer whose name constraints hold a GeneralSubtree with a minimum
// other than 0 or a maximum (reason `name_constraints`), as OpenSSL's verifier does (X509_V_ERR_SUBTREE_MINMAX).
// Found in review: the constraint reader ignored both fields, so the CA's renewal check and x5c chains (validated
// outside a handshake) accepted a chain OpenSSL refuses. Each verdict is compared with `openssl verify`'s.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { x509 } from '../../../src/pki/index.js';
import { tlv } from '../../helpers/der-writer.js';
import {
  bothEntryPoints,
  createTestRoot,
  intermediateUnder,
  leafUnder,
  type TestRoot,
} from '../../helpers/issuer-chain.js';

let root: TestRoot;
let dir: string;

beforeAll(async () => {
  root = await createTestRoot();
  dir = mkdtempSync(join(tmpdir(), 'meshauth-minmax-'));
  writeFileSync(join(dir, 'root.pem'), root.cert.toString('pem'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** GeneralSubtree { base, [0] minimum?, [1] maximum? } as DER; `fields` holds the optional fields' encodings. */
const subtree = (base: Buffer, fields = '') => tlv(0x30, [base, Buffer.from(fields, 'hex')]);
const uri = (host: string) => tlv(0x86, Buffer.from(host));
const dns = (host: string) => tlv(0x82, Buffer.from(host));
/** NameConstraints { [0] permittedSubtrees, [1] excludedSubtrees }, critical. */
function nameConstraints(permitted: Buffer[], excluded: Buffer[] = []): x509.Extension {
  const parts = [
    ...(permitted.length > 0 ? [tlv(0xa0, permitted)] : []),
    ...(excluded.length > 0 ? [tlv(0xa1, excluded)] : []),
  ];
  return new x509.Extension('2.5.29.30', true, new Uint8Array(tlv(0x30, parts)));
}

/** Our two validator entry points' verdicts and `openssl verify`'s, for a leaf under an intermediate with `extension`. */
async function verdicts(extension: x509.Extension): Promise<{ ours: [string, string]; openssl: string }> {
  const issuer = await intermediateUnder(root, [extension]);
  const intermediate = issuer.cert;
  const leaf = await leafUnder(issuer);
  writeFileSync(join(dir, 'intermediate.pem'), intermediate.toString('pem'));
  writeFileSync(join(dir, 'leaf.pem'), leaf.toString('pem'));
  const verify = spawnSync(
    'openssl',
    ['verify', '-CAfile', 'root.pem', '-untrusted', 'intermediate.pem', '-purpose', 'sslclient', 'leaf.pem'],
    { cwd: dir, encoding: 'utf8' },
  );
  if (verify.error !== undefined) throw new Error(`openssl is required for this test: ${verify.error.message}`);
  const out = `${verify.stdout}${verify.stderr}`;
  return {
    ours: bothEntryPoints(leaf, [intermediate], root.bundle),
    openssl: verify.status === 0 ? 'ok' : /minimum and maximum not supported/.test(out) ? 'minmax' : out.trim(),
  };
}

describe('issuer name constraints with a subtree minimum or maximum', () => {
  it.each([
    ['fail/a permitted URI subtree with maximum 5', nameConstraints([subtree(uri('example.org'), '810105')])],
    ['fail/a permitted URI subtree with minimum 1', nameConstraints([subtree(uri('example.org'), '800101')])],
    [
      'fail/an excluded URI subtree with minimum 0 and maximum 0',
      nameConstraints([subtree(uri('example.org'))], [subtree(uri('other.org'), '800100810100')]),
    ],
  ])('%s → name_constraints, as OpenSSL refuses it', async (_name, extension) => {
    expect(await verdicts(extension)).toEqual({ ours: ['name_constraints', 'name_constraints'], openssl: 'minmax' });
  });

  // OpenSSL looks at the fields only in subtrees of a name form the leaf has; refusing them in any subtree is
  // stricter, and no CA that issues SVIDs writes them.
  it('fail/a DNS subtree with a maximum, although the leaf has no DNS name (OpenSSL accepts it)', async () => {
    const extension = nameConstraints([subtree(uri('example.org')), subtree(dns('svc.example.org'), '810101')]);
    expect(await verdicts(extension)).toEqual({ ours: ['name_constraints', 'name_constraints'], openssl: 'ok' });
  });

  it.each([
    ['ok/a URI subtree without either field', nameConstraints([subtree(uri('example.org'))])],
    // DER leaves a DEFAULT value out, but OpenSSL accepts a minimum written as 0, and so do we.
    ['ok/a URI subtree with minimum written as 0', nameConstraints([subtree(uri('example.org'), '800100')])],
  ])('%s: accepted, as OpenSSL accepts it', async (_name, extension) => {
    expect(await verdicts(extension)).toEqual({ ours: ['ok', 'ok'], openssl: 'ok' });
  });
});
