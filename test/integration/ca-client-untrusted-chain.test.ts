// The CA client refusing a CA whose certificate does not chain to the roots it was given (another CA's bundle, a
// chain without its intermediate, a self-signed certificate): the message says so, in words, and names the bundle
// file when the caller gave one; OpenSSL's "unable to get local issuer certificate" alone read as a CA that is down.
// The code stays MESHAUTH_ERR_CA_UNAVAILABLE with reason `tls`, which the agent counts and retries;
// caChainUntrusted() tells it apart for commands that report it as input to fix.
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caChainUntrusted, fetchBundle } from '../../src/agent/ca-client.js';
import { MeshauthError } from '../../src/errors/index.js';
import { exportPrivateKeyPem, generateKeyPair, KEY_ALGORITHMS, randomSerialHex, x509 } from '../../src/pki/index.js';
import { TestCa } from '../helpers/test-ca.js';

let ca: TestCa;
let other: TestCa;
const servers = new Map<string, { server: Server; url: string }>();

async function serve(name: string, cert: string, key: string): Promise<void> {
  const server = createServer({ cert, key }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bundle: [ca.bundlePem] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.set(name, { server, url: `https://127.0.0.1:${(server.address() as AddressInfo).port}` });
}

/** A server certificate with the CA's SPIFFE ID that signs itself (OpenSSL: DEPTH_ZERO_SELF_SIGNED_CERT). */
async function selfSignedCa(): Promise<{ certPem: string; keyPem: string }> {
  const keys = await generateKeyPair('p256');
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialHex(),
    name: 'CN=self-signed',
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 3_600_000),
    signingAlgorithm: KEY_ALGORITHMS.p256.sign,
    keys: { publicKey: keys.publicKey, privateKey: keys.privateKey },
    extensions: [
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://example.org/meshauth/ca' }], false),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

beforeAll(async () => {
  ca = await TestCa.create();
  other = await TestCa.create();
  const own = await ca.issue({ id: ca.idFor('/meshauth/ca'), ipAddresses: ['127.0.0.1'] });
  const foreign = await other.issue({ id: other.idFor('/meshauth/ca'), ipAddresses: ['127.0.0.1'] });
  await serve('own', own.chainPem, own.keyPem);
  await serve('another CA', foreign.chainPem, foreign.keyPem);
  // The leaf without the intermediate: OpenSSL's "unable to verify the first certificate".
  await serve('no intermediate', own.certPem, own.keyPem);
  await serve('another CA, root sent too', `${foreign.chainPem}${other.rootPem}`, foreign.keyPem);
  const selfSigned = await selfSignedCa();
  await serve('self-signed', selfSigned.certPem, selfSigned.keyPem);
  // Our chain, but not the CA's SPIFFE ID: an identity failure, not an untrusted chain.
  const impostor = await ca.issue({ id: ca.idFor('/ns/shop/sa/web'), ipAddresses: ['127.0.0.1'] });
  await serve('not the CA', impostor.chainPem, impostor.keyPem);
});

afterAll(async () => {
  for (const { server } of servers.values()) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function refusal(name: string, bundleFile?: string): Promise<MeshauthError> {
  const { url } = servers.get(name) as { url: string };
  const error = await fetchBundle({
    caUrl: url,
    trustDomain: ca.trustDomain,
    bundlePem: ca.bundlePem,
    ...(bundleFile === undefined ? {} : { bundleFile }),
  }).then(
    () => new Error('expected the call to fail'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MeshauthError);
  return error as MeshauthError;
}

describe('CA client, CA certificate not under the given roots', () => {
  it.each([
    ['another CA', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'],
    ['no intermediate', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
    ['another CA, root sent too', 'SELF_SIGNED_CERT_IN_CHAIN'],
    ['self-signed', 'DEPTH_ZERO_SELF_SIGNED_CERT'],
  ])('fail/%s → CA_UNAVAILABLE tls, "does not chain to any root in the trust bundle FILE"', async (name, code) => {
    const error = await refusal(name, '/etc/meshauth/bundle.pem');
    expect(error.code).toBe('MESHAUTH_ERR_CA_UNAVAILABLE');
    expect(error.reason).toBe('tls');
    expect(caChainUntrusted(error)).toBe(true);
    expect(error.message).toMatch(
      new RegExp(
        `failed TLS authentication: its certificate does not chain to any root in the trust bundle ` +
          `/etc/meshauth/bundle\\.pem \\(${code}: [^)]+\\): use the bundle\\.pem of the CA at this URL, or the URL of ` +
          'the CA that bundle is from$',
      ),
    );
  });

  it('fail/no bundle file given (the roots came from elsewhere) → "the trust bundle" without a name', async () => {
    const error = await refusal('another CA');
    expect(caChainUntrusted(error)).toBe(true);
    expect(error.message).toContain(
      'does not chain to any root in the trust bundle (UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
    );
  });

  it('fail/our chain, another SPIFFE ID → an identity failure, not an untrusted chain', async () => {
    const error = await refusal('not the CA', '/etc/meshauth/bundle.pem');
    expect(error.code).toBe('MESHAUTH_ERR_CA_UNAVAILABLE');
    expect(error.reason).toBe('tls');
    expect(caChainUntrusted(error)).toBe(false);
    expect(error.message).not.toContain('does not chain');
  });

  it('fail/nothing listening → unreachable, not an untrusted chain', async () => {
    const { server, url } = servers.get('own') as { server: Server; url: string };
    expect(server.listening).toBe(true);
    const error = await fetchBundle({
      caUrl: 'https://127.0.0.1:1',
      trustDomain: ca.trustDomain,
      bundlePem: ca.bundlePem,
    }).then(
      () => undefined,
      (e: unknown) => e as MeshauthError,
    );
    expect(error).toBeInstanceOf(MeshauthError);
    expect(error?.reason).toBe('unreachable');
    expect(caChainUntrusted(error)).toBe(false);
    // The right roots: the same server answers.
    expect(
      (await fetchBundle({ caUrl: url, trustDomain: ca.trustDomain, bundlePem: ca.bundlePem })).bundlePem,
    ).toHaveLength(1);
  });
});
