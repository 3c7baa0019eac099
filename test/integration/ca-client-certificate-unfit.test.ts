// The CA client refusing a CA whose certificate chains to the given roots but is unfit (a serving certificate
// without serverAuth, an issuer that is not a CA, a chain longer than its root allows, an expired certificate): a
// failed TLS authentication (reason `tls`) in words that say what is wrong, never "unreachable", which reads as a CA
// that is down and is retried as one. Not an untrusted chain either: the bundle is the right one.
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caChainUntrusted, fetchBundle } from '../../src/agent/ca-client.js';
import { MeshauthError } from '../../src/errors/index.js';
import { x509 } from '../../src/pki/index.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';

let ca: TestCa;
const servers = new Map<string, { server: Server; url: string }>();

async function serve(name: string, served: TestSvid): Promise<void> {
  const server = createServer({ cert: served.chainPem, key: served.keyPem }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bundle: [ca.bundlePem] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.set(name, { server, url: `https://127.0.0.1:${(server.address() as AddressInfo).port}` });
}

beforeAll(async () => {
  ca = await TestCa.create();
  const id = ca.idFor('/meshauth/ca');
  const ip = ['127.0.0.1'];
  await serve('right', await ca.issue({ id, ipAddresses: ip }));
  await serve(
    'no serverAuth',
    await ca.issue({ id, ipAddresses: ip, defects: { extKeyUsage: [x509.ExtendedKeyUsage.clientAuth] } }),
  );
  await serve('issuer not a CA', await ca.issueThrough([{ isCa: false }], { id, ipAddresses: ip }));
  // The root allows one CA below it; two are one too many.
  await serve('chain past the root’s pathLen', await ca.issueThrough([{}, {}], { id, ipAddresses: ip }));
  const now = Date.now();
  await serve(
    'expired',
    await ca.issue({ id, ipAddresses: ip, notBefore: new Date(now - 7_200_000), notAfter: new Date(now - 3_600_000) }),
  );
});

afterAll(async () => {
  for (const { server } of servers.values()) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function refusal(name: string): Promise<MeshauthError> {
  const { url } = servers.get(name) as { url: string };
  const error = await fetchBundle({
    caUrl: url,
    trustDomain: ca.trustDomain,
    bundlePem: ca.bundlePem,
    bundleFile: '/etc/meshauth/bundle.pem',
  }).then(
    () => new Error('expected the call to fail'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MeshauthError);
  return error as MeshauthError;
}

describe('CA client, CA certificate under the given roots but unfit', () => {
  it.each([
    [
      'no serverAuth',
      /^INVALID_PURPOSE$/,
      'its serving certificate is not valid for a TLS server (extendedKeyUsage without serverAuth), or its issuer ' +
        'is not a CA: check that the URL names the meshauth CA and not another server (INVALID_PURPOSE: ',
    ],
    // OpenSSL 3 reports an issuer without cA as a purpose it does not serve; older builds as INVALID_CA.
    ['issuer not a CA', /^(INVALID_PURPOSE|INVALID_CA)$/, 'not a CA'],
    ['chain past the root’s pathLen', /^PATH_LENGTH_EXCEEDED$/, 'more intermediates than the pathLenConstraint'],
    ['expired', /^CERT_HAS_EXPIRED$/, "a certificate of its chain has expired by this machine's clock"],
  ])(
    'fail/%s → CA_UNAVAILABLE tls "failed TLS authentication", in words, then OpenSSL’s',
    async (name, code, words) => {
      const error = await refusal(name);
      expect(error.code).toBe('MESHAUTH_ERR_CA_UNAVAILABLE');
      expect(error.reason).toBe('tls');
      expect(caChainUntrusted(error)).toBe(false);
      expect((error.cause as { code?: unknown }).code).toMatch(code);
      expect(error.message).toMatch(/^CA https:\/\/127\.0\.0\.1:\d+\/v1\/bundle failed TLS authentication: /);
      expect(error.message).toContain(words);
      // OpenSSL's code and words stay, after ours, for whoever searches for them.
      expect(error.message).toMatch(/ \((INVALID_PURPOSE|INVALID_CA|PATH_LENGTH_EXCEEDED|CERT_HAS_EXPIRED): [^)]+\)$/);
      expect(error.message).not.toContain('unreachable');
      expect(error.message).not.toContain('/etc/meshauth/bundle.pem');
    },
  );

  it('ok/the same roots, a fit certificate → the CA answers', async () => {
    const { url } = servers.get('right') as { url: string };
    const answer = await fetchBundle({ caUrl: url, trustDomain: ca.trustDomain, bundlePem: ca.bundlePem });
    expect(answer.bundlePem).toEqual([ca.bundlePem]);
  });
});
