// The CA client refusing a CA whose certificate chains to the given roots but does not carry the CA's SPIFFE ID of
// the configured trust domain: the message says what is wrong in words (for a CA of another trust domain, both trust
// domains), and no internal code such as ERR_MESHAUTH_CA_IDENTITY reaches it. The code stays
// MESHAUTH_ERR_CA_UNAVAILABLE with reason `tls`.
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchBundle } from '../../src/agent/ca-client.js';
import { MeshauthError } from '../../src/errors/index.js';
import { TrustDomain } from '../../src/identity/index.js';
import { TestCa } from '../helpers/test-ca.js';

let ca: TestCa;
const servers: Server[] = [];
const urls = new Map<string, string>();

async function serve(name: string, id: string): Promise<void> {
  const serving = await ca.issue({ id, ipAddresses: ['127.0.0.1'] });
  const server = createServer({ cert: serving.chainPem, key: serving.keyPem }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bundle: [ca.bundlePem] }));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  urls.set(name, `https://127.0.0.1:${(server.address() as AddressInfo).port}`);
}

beforeAll(async () => {
  ca = await TestCa.create('example.org');
  await serve('ca', 'spiffe://example.org/meshauth/ca');
  await serve('workload', 'spiffe://example.org/ns/shop/sa/web');
});

afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function refusal(name: string, trustDomain: string, bundleSetting?: string): Promise<MeshauthError> {
  const error = await fetchBundle({
    caUrl: urls.get(name) as string,
    trustDomain: TrustDomain.parse(trustDomain),
    bundlePem: ca.bundlePem,
    bundleFile: '/etc/meshauth/bundle.pem',
    ...(bundleSetting === undefined ? {} : { bundleSetting }),
  }).then(
    () => new Error('expected the call to fail'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MeshauthError);
  return error as MeshauthError;
}

describe('CA client, CA certificate without the expected CA SPIFFE ID', () => {
  it('fail/a CA of example.org, config trustDomain other.org → both trust domains named, no internal code', async () => {
    const url = urls.get('ca') as string;
    const error = await refusal('ca', 'other.org', 'ca.bundle');
    expect(error.code).toBe('MESHAUTH_ERR_CA_UNAVAILABLE');
    expect(error.reason).toBe('tls');
    expect(error.message).toBe(
      `CA ${url}/v1/bundle failed TLS authentication: the CA at ${url} is of trust domain example.org, this ` +
        "config's trustDomain is other.org (its certificate carries spiffe://example.org/meshauth/ca, not " +
        'spiffe://other.org/meshauth/ca)',
    );
  });

  it('fail/the trust domain came from the bundle (no config setting) → named as the bundle’s', async () => {
    const error = await refusal('ca', 'other.org');
    expect(error.message).toContain(
      'is of trust domain example.org, the trust domain of the trust bundle is other.org',
    );
    expect(error.message).not.toContain('ERR_MESHAUTH_CA_IDENTITY');
  });

  it('fail/a workload of the same trust domain → not the CA, in words', async () => {
    const error = await refusal('workload', 'example.org', 'ca.bundle');
    expect(error.reason).toBe('tls');
    expect(error.message).toContain(
      "failed TLS authentication: its certificate does not carry the CA's SPIFFE ID spiffe://example.org/meshauth/ca " +
        'as its one URI SAN (it carries spiffe://example.org/ns/shop/sa/web): check that the URL names the meshauth ' +
        'CA and not another server',
    );
    expect(error.message).not.toContain('ERR_MESHAUTH_CA_IDENTITY');
  });
});
