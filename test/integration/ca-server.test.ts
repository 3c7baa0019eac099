// The CA API against a real TLS server on 127.0.0.1 port 0.
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { beforeAll, describe, expect, it } from 'vitest';
import * as caClient from '../../src/agent/ca-client.js';
import { type CaServer, createJoinToken, hashToken, loadCaMaterial, startCaServer } from '../../src/ca/index.js';
import { MeshauthError } from '../../src/errors/index.js';
import { SpiffeId, TrustDomain } from '../../src/identity/index.js';
import {
  createCsrPem,
  createLeafCertificate,
  exportPrivateKeyPem,
  generateKeyPair,
  KEY_ALGORITHMS,
  parseCertificatesPem,
  TrustBundle,
  uriSans,
  validateX509Svid,
  x509,
} from '../../src/pki/index.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { makeCaDir } from '../helpers/ca-dir.js';
import { caRejections } from '../helpers/ca-metrics.js';
import { TestCa } from '../helpers/test-ca.js';

const ID = 'spiffe://example.org/ns/shop/sa/web';
const SVID_TTL_MS = 15 * 60_000;
const TD = TrustDomain.parse('example.org');

let dir: string;
let server: CaServer;
let metrics: Metrics;
let bundlePem: string;
let agent: Agent;

beforeAll(async () => {
  const ca = await makeCaDir();
  dir = ca.dir;
  metrics = new Metrics();
  server = await startCaServer({ dir, listen: '127.0.0.1:0', svidTtlMs: SVID_TTL_MS, logger: silentLogger(), metrics });
  bundlePem = (await loadCaMaterial(dir)).bundle.toPem();
  agent = new Agent({ connect: { ca: bundlePem } });
  return async () => {
    await agent.close();
    await server.close();
    ca.cleanup();
  };
});

interface FlatRequest {
  caUrl: string;
  bundlePem: string;
  csrPem: string;
  token?: string;
  clientCertPem?: string;
  clientKeyPem?: string;
}

/** The one CA client (src/agent/ca-client.ts), called with flat options to keep the cases short. */
function requestSvid({ csrPem, token, ...connection }: FlatRequest) {
  return caClient.requestSvid({ ...connection, trustDomain: TD }, token === undefined ? { csrPem } : { csrPem, token });
}

async function fetchBundle(connection: { caUrl: string; bundlePem: string; timeoutMs?: number }) {
  return (await caClient.fetchBundle({ ...connection, trustDomain: TD })).bundlePem;
}

async function bootstrap(id = ID, keyType: 'p256' | 'ed25519' | 'rsa2048' = 'p256') {
  const keys = await generateKeyPair(keyType);
  const token = await createJoinToken({ dir, id, ttlMs: 60_000 });
  const response = await requestSvid({ caUrl: server.url, bundlePem, csrPem: await createCsrPem(keys), token });
  return { keys, response, keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

async function post(body: string | Readable, headers: Record<string, string> = { 'content-type': 'application/json' }) {
  const response = await request(`${server.url}/v1/svid`, { method: 'POST', dispatcher: agent, headers, body });
  const text = await response.body.text();
  return { status: response.statusCode, json: JSON.parse(text) as { code: string; message: string } };
}

const rejected = (reason: string): Promise<number> => caRejections(metrics, reason);

describe('POST /v1/svid with a join token', () => {
  it.each(['p256', 'ed25519', 'rsa2048'] as const)('ok/bootstrap issues the token identity (%s)', async (keyType) => {
    const { response, keys } = await bootstrap(ID, keyType);
    const chain = parseCertificatesPem(response.certChainPem.join(''));
    expect(chain).toHaveLength(2);
    const bundle = TrustBundle.fromPem(SpiffeId.parse(ID).trustDomain, response.bundlePem.join(''));
    expect(validateX509Svid(chain, bundle, new Date()).toString()).toBe(ID);
    const leaf = chain[0] as x509.X509Certificate;
    expect(Buffer.from(leaf.publicKey.rawData)).toEqual(
      Buffer.from(await crypto.subtle.exportKey('spki', keys.publicKey)),
    );
    expect(new Date(response.expiresAt).getTime()).toBe(leaf.notAfter.getTime());
    expect(leaf.notAfter.getTime() - leaf.notBefore.getTime()).toBe(SVID_TTL_MS + 60_000); // + 1 min back-dating
  });

  it('ok/the CSR asks for another identity, extra SANs and CA extensions: only its public key is used', async () => {
    const keys = await generateKeyPair('p256');
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: 'CN=spiffe://example.org/ns/kube-system/sa/admin',
      keys,
      signingAlgorithm: KEY_ALGORITHMS.p256.sign,
      extensions: [
        new x509.SubjectAlternativeNameExtension([
          { type: 'url', value: 'spiffe://example.org/ns/kube-system/sa/admin' },
          { type: 'url', value: 'spiffe://evil.org/ns/a/sa/b' },
          { type: 'dns', value: 'admin.example.org' },
          { type: 'ip', value: '10.0.0.1' },
          { type: 'email', value: 'root@example.org' },
        ]),
        new x509.BasicConstraintsExtension(true, 3, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      ],
    });
    const token = await createJoinToken({ dir, id: ID, ttlMs: 60_000 });
    const response = await requestSvid({ caUrl: server.url, bundlePem, csrPem: csr.toString('pem'), token });
    const leaf = parseCertificatesPem(response.certChainPem[0] as string)[0] as x509.X509Certificate;
    expect(leaf.subject).toBe('');
    const san = leaf.getExtension(x509.SubjectAlternativeNameExtension);
    expect(san?.critical).toBe(true);
    expect(san?.names.items.map((n) => [n.type, n.value])).toEqual([['url', ID]]);
    expect(uriSans(leaf)).toEqual([ID]);
    expect(leaf.getExtension(x509.BasicConstraintsExtension)?.ca).toBe(false);
    const usage = leaf.getExtension(x509.KeyUsagesExtension);
    expect(usage?.critical).toBe(true);
    expect(usage?.usages).toBe(x509.KeyUsageFlags.digitalSignature);
    expect(leaf.getExtension(x509.ExtendedKeyUsageExtension)?.usages.map(String).sort()).toEqual(
      [x509.ExtendedKeyUsage.clientAuth, x509.ExtendedKeyUsage.serverAuth].sort(),
    );
    expect(leaf.extensions.map((e) => e.type).sort()).toEqual(
      ['2.5.29.14', '2.5.29.15', '2.5.29.17', '2.5.29.19', '2.5.29.35', '2.5.29.37'].sort(),
    );
    expect(leaf.notAfter.getTime() - leaf.notBefore.getTime()).toBe(SVID_TTL_MS + 60_000);
  });

  it('fail/a request for another ID is refused (403) without spending the join token', async () => {
    const token = await createJoinToken({ dir, id: ID, ttlMs: 60_000 });
    const csr = await createCsrPem(await generateKeyPair('p256'));
    const before = await rejected('identity_mismatch');
    const wrong = await post(JSON.stringify({ csr, token, id: 'spiffe://example.org/ns/other/sa/typo' }));
    expect(wrong.status).toBe(403);
    expect(wrong.json.code).toBe('MESHAUTH_ERR_CA_IDENTITY_MISMATCH');
    expect(await rejected('identity_mismatch')).toBe(before + 1);
    // The token still works for its own identity.
    const right = await post(JSON.stringify({ csr, token, id: ID }));
    expect(right.status).toBe(200);
  });

  it("fail/a join token for the CA's own ID gets no SVID (its holder could pose as the CA) and is not spent", async () => {
    // A token file as an older version (or a hand-made token store) could have left: createJoinToken refuses the ID.
    const token = randomBytes(32).toString('base64url');
    const file = join(dir, 'tokens', `${hashToken(token)}.json`);
    const expiresAt = new Date(Date.now() + 60_000).toISOString();
    writeFileSync(file, JSON.stringify({ id: 'spiffe://example.org/meshauth/ca', expiresAt }), { mode: 0o600 });
    const csr = await createCsrPem(await generateKeyPair('p256'));
    const before = await rejected('reserved_id');
    const answer = await post(JSON.stringify({ csr, token }));
    expect(answer.status).toBe(400);
    expect(answer.json.code).toBe('MESHAUTH_ERR_SPIFFE_ID_INVALID');
    expect(await rejected('reserved_id')).toBe(before + 1);
    expect(existsSync(file)).toBe(true);
  });

  it('ok/50 concurrent uses of one join token yield exactly one certificate', async () => {
    const token = await createJoinToken({ dir, id: ID, ttlMs: 60_000 });
    const csr = await createCsrPem(await generateKeyPair('p256'));
    const before = await rejected('token_used');
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, () => requestSvid({ caUrl: server.url, bundlePem, csrPem: csr, token })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(failures).toHaveLength(49);
    for (const failure of failures) {
      expect(failure.reason).toBeInstanceOf(MeshauthError);
      expect((failure.reason as MeshauthError).code).toBe('MESHAUTH_ERR_CA_UNAUTHENTICATED');
    }
    expect((await rejected('token_used')) - before).toBe(49);
  });
});

describe('POST /v1/svid renewal over mTLS', () => {
  it('ok/renewal with the current SVID and no token keeps the SPIFFE ID', async () => {
    const first = await bootstrap('spiffe://example.org/ns/shop/sa/cart');
    const keys = await generateKeyPair('p256');
    const renewed = await requestSvid({
      caUrl: server.url,
      bundlePem,
      csrPem: await createCsrPem(keys),
      clientCertPem: first.response.certChainPem.join(''),
      clientKeyPem: first.keyPem,
    });
    const leaf = parseCertificatesPem(renewed.certChainPem[0] as string)[0] as x509.X509Certificate;
    expect(uriSans(leaf)).toEqual(['spiffe://example.org/ns/shop/sa/cart']);
    expect(leaf.serialNumber).not.toBe(parseCertificatesPem(first.response.certChainPem[0] as string)[0]?.serialNumber);
  });

  it('fail/renewal with an expired client certificate → 401', async () => {
    const material = await loadCaMaterial(dir);
    const keys = await generateKeyPair('p256');
    const expired = await createLeafCertificate({
      id: SpiffeId.parse(ID),
      publicKey: keys.publicKey,
      issuer: material.issuer,
      now: new Date(Date.now() - 3 * 3_600_000),
      ttlMs: 3_600_000,
    });
    const before = await rejected('client_cert_expired');
    const error = await requestSvid({
      caUrl: server.url,
      bundlePem,
      csrPem: await createCsrPem(keys),
      clientCertPem: `${expired.toString('pem')}\n${material.intermediatePem}`,
      clientKeyPem: await exportPrivateKeyPem(keys.privateKey),
    }).catch((e: unknown) => e);
    expect((error as MeshauthError).code).toBe('MESHAUTH_ERR_CA_UNAUTHENTICATED');
    expect(caClient.caStatusOf(error)).toBe(401);
    expect(await rejected('client_cert_expired')).toBe(before + 1);
  });

  it('fail/renewal with a certificate of another CA (same trust domain) → 401', async () => {
    const foreign = await (await TestCa.create('example.org')).issue({ id: ID });
    const before = await rejected('client_cert_unknown_ca');
    const error = await requestSvid({
      caUrl: server.url,
      bundlePem,
      csrPem: await createCsrPem(await generateKeyPair('p256')),
      clientCertPem: foreign.chainPem,
      clientKeyPem: foreign.keyPem,
    }).catch((e: unknown) => e);
    expect((error as MeshauthError).code).toBe('MESHAUTH_ERR_CA_UNAUTHENTICATED');
    expect(await rejected('client_cert_unknown_ca')).toBe(before + 1);
  });
});

describe('POST /v1/svid rejections', () => {
  const csrPem = createCsrPem;
  const expiredToken = () => createJoinToken({ dir, id: ID, ttlMs: 60_000, now: new Date(Date.now() - 5 * 60_000) });
  const usedToken = async () => {
    const token = await createJoinToken({ dir, id: ID, ttlMs: 60_000 });
    await requestSvid({ caUrl: server.url, bundlePem, csrPem: await csrPem(await generateKeyPair()), token });
    return token;
  };
  const cases: [
    string,
    () => Promise<{ body: string | Readable; headers?: Record<string, string> }>,
    number,
    string,
    string,
  ][] = [
    [
      'fail/unknown token',
      async () => ({ body: JSON.stringify({ csr: await csrPem(await generateKeyPair()), token: 'A'.repeat(43) }) }),
      401,
      'MESHAUTH_ERR_CA_UNAUTHENTICATED',
      'token_unknown',
    ],
    [
      'fail/malformed token',
      async () => ({ body: JSON.stringify({ csr: await csrPem(await generateKeyPair()), token: 'not a token' }) }),
      401,
      'MESHAUTH_ERR_CA_UNAUTHENTICATED',
      'token_unknown',
    ],
    [
      'fail/replayed token',
      async () => ({ body: JSON.stringify({ csr: await csrPem(await generateKeyPair()), token: await usedToken() }) }),
      401,
      'MESHAUTH_ERR_CA_UNAUTHENTICATED',
      'token_used',
    ],
    [
      'fail/expired token',
      async () => ({
        body: JSON.stringify({ csr: await csrPem(await generateKeyPair()), token: await expiredToken() }),
      }),
      401,
      'MESHAUTH_ERR_CA_UNAUTHENTICATED',
      'token_expired',
    ],
    [
      'fail/no token and no client certificate',
      async () => ({ body: JSON.stringify({ csr: await csrPem(await generateKeyPair()) }) }),
      401,
      'MESHAUTH_ERR_CA_UNAUTHENTICATED',
      'no_credential',
    ],
    [
      'fail/CSR signature invalid',
      async () => ({
        body: JSON.stringify({
          csr: tamperCsr(await csrPem(await generateKeyPair())),
          token: await createJoinToken({ dir, id: ID, ttlMs: 60_000 }),
        }),
      }),
      400,
      'MESHAUTH_ERR_CSR_INVALID',
      'csr_signature',
    ],
    [
      'fail/CSR garbage',
      async () => ({
        body: JSON.stringify({
          csr: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n',
          token: 'A'.repeat(43),
        }),
      }),
      400,
      'MESHAUTH_ERR_CSR_INVALID',
      'csr_malformed',
    ],
    [
      'fail/body over 64 KiB (declared)',
      async () => ({ body: JSON.stringify({ csr: 'x'.repeat(70_000) }) }),
      413,
      'MESHAUTH_ERR_CA_BODY_TOO_LARGE',
      'body_too_large',
    ],
    [
      'fail/body over 64 KiB (chunked)',
      async () => ({ body: Readable.from(Array.from({ length: 20 }, () => Buffer.alloc(8192, 0x20))) }),
      413,
      'MESHAUTH_ERR_CA_BODY_TOO_LARGE',
      'body_too_large',
    ],
    [
      'fail/wrong content type',
      async () => ({ body: '{}', headers: { 'content-type': 'text/plain' } }),
      415,
      'MESHAUTH_ERR_CA_UNSUPPORTED_MEDIA_TYPE',
      'unsupported_media_type',
    ],
    ['fail/malformed JSON', async () => ({ body: '{"csr":' }), 400, 'MESHAUTH_ERR_CA_BAD_REQUEST', 'malformed_json'],
    [
      'fail/JSON of the wrong shape',
      async () => ({ body: '{"csr": 42}' }),
      400,
      'MESHAUTH_ERR_CA_BAD_REQUEST',
      'bad_request_body',
    ],
  ];
  it.each(cases)('%s', async (_name, make, status, code, reason) => {
    const { body, headers } = await make();
    const before = await rejected(reason);
    const response = await post(body, headers ?? { 'content-type': 'application/json' });
    expect(response.status).toBe(status);
    expect(response.json.code).toBe(code);
    expect(await rejected(reason)).toBe(before + 1);
  });
});

describe('other endpoints', () => {
  it('ok/GET /v1/bundle returns PEMs and a SPIFFE bundle', async () => {
    const response = await request(`${server.url}/v1/bundle`, { dispatcher: agent });
    const json = (await response.body.json()) as {
      bundle: string[];
      spiffe: { keys: Record<string, unknown>[]; spiffe_refresh_hint: number };
    };
    expect(json.bundle.join('')).toBe(bundlePem);
    expect(json.spiffe.keys).toHaveLength(1);
    const key = json.spiffe.keys[0] as Record<string, unknown>;
    expect(key).toMatchObject({ use: 'x509-svid', kty: 'EC', crv: 'P-256' });
    expect(key.kid).toBeUndefined();
    expect(typeof key.x).toBe('string');
    expect(key.x5c).toEqual([
      Buffer.from(parseCertificatesPem(bundlePem)[0]?.rawData ?? new ArrayBuffer(0)).toString('base64'),
    ]);
    expect(json.spiffe.spiffe_refresh_hint).toBeGreaterThan(0);
    expect(await fetchBundle({ caUrl: server.url, bundlePem })).toEqual(json.bundle);
  });

  it('ok/GET /v1/bundle with Accept: application/x-pem-file returns plain PEM', async () => {
    const response = await request(`${server.url}/v1/bundle`, {
      dispatcher: agent,
      headers: { accept: 'application/x-pem-file' },
    });
    expect(response.headers['content-type']).toBe('application/x-pem-file');
    expect(await response.body.text()).toBe(bundlePem);
  });

  it('ok/healthz and metrics', async () => {
    const health = await request(`${server.url}/healthz`, { dispatcher: agent });
    expect(health.statusCode).toBe(200);
    expect(await health.body.text()).toBe('ok\n');
    const scrape = await request(`${server.url}/metrics`, { dispatcher: agent });
    expect(scrape.headers['content-type']).toBe(metrics.contentType);
    const text = await scrape.body.text();
    expect(text).toContain('meshauth_ca_svids_issued_total{method="join_token"}');
    expect(text).toContain('meshauth_ca_requests_rejected_total{reason=');
  });

  it.each([
    ['fail/unknown path', 'GET', '/v1/nothing', 404, 'MESHAUTH_ERR_CA_NOT_FOUND'],
    ['fail/wrong method on /v1/svid', 'GET', '/v1/svid', 405, 'MESHAUTH_ERR_CA_METHOD_NOT_ALLOWED'],
    ['fail/wrong method on /v1/bundle', 'DELETE', '/v1/bundle', 405, 'MESHAUTH_ERR_CA_METHOD_NOT_ALLOWED'],
  ] as const)('%s', async (_name, method, path, status, code) => {
    const response = await request(`${server.url}${path}`, { method, dispatcher: agent });
    expect(response.statusCode).toBe(status);
    expect(((await response.body.json()) as { code: string }).code).toBe(code);
  });
});

describe('client errors', () => {
  it('fail/CA unreachable → MESHAUTH_ERR_CA_UNAVAILABLE', async () => {
    const closed = await startCaServer({
      dir,
      listen: '127.0.0.1:0',
      svidTtlMs: SVID_TTL_MS,
      logger: silentLogger(),
      metrics: new Metrics(),
    });
    await closed.close();
    const error = await fetchBundle({ caUrl: closed.url, bundlePem, timeoutMs: 2000 }).catch((e: unknown) => e);
    expect((error as MeshauthError).code).toBe('MESHAUTH_ERR_CA_UNAVAILABLE');
  });

  it('fail/CA not verifiable by the given bundle → MESHAUTH_ERR_CA_UNAVAILABLE', async () => {
    const other = await TestCa.create('example.org');
    const error = await fetchBundle({ caUrl: server.url, bundlePem: other.bundlePem }).catch((e: unknown) => e);
    expect((error as MeshauthError).code).toBe('MESHAUTH_ERR_CA_UNAVAILABLE');
  });
});

/** Flips one bit in the CSR's signature (the last bytes of the DER). */
function tamperCsr(pem: string): string {
  const der = Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
  der[der.length - 2] = (der[der.length - 2] ?? 0) ^ 0x01;
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE REQUEST-----\n${lines.join('\n')}\n-----END CERTIFICATE REQUEST-----\n`;
}
