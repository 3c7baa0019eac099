import type { PeerCertificate } from 'node:tls';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkCaIdentity } from '../../../src/agent/ca-client.js';
import { TrustDomain } from '../../../src/identity/index.js';
import { TestCa } from '../../helpers/test-ca.js';

const td = TrustDomain.parse('example.org');
let ca: TestCa;

beforeAll(async () => {
  ca = await TestCa.create();
});

async function peer(options: Parameters<TestCa['issue']>[0]): Promise<PeerCertificate> {
  const svid = await ca.issue(options);
  return { raw: Buffer.from(svid.leaf.rawData) } as PeerCertificate;
}

describe('checkCaIdentity', () => {
  it('ok/ca-spiffe-id', async () => {
    expect(checkCaIdentity(td, await peer({ id: 'spiffe://example.org/meshauth/ca' }))).toBeUndefined();
  });

  it.each([
    ['fail/workload-id', { id: 'spiffe://example.org/ns/default/sa/test' }],
    ['fail/ca-path-of-other-trust-domain', { id: 'spiffe://other.org/meshauth/ca' }],
    ['fail/ca-path-prefix', { id: 'spiffe://example.org/meshauth/ca/x' }],
    ['fail/two-uri-sans', { defects: { uris: ['spiffe://example.org/meshauth/ca', 'spiffe://example.org/x'] } }],
    ['fail/no-uri-san', { defects: { uris: [], dnsNames: ['ca.example.org'] } }],
  ])('%s', async (_name, options) => {
    expect(checkCaIdentity(td, await peer(options))).toBeInstanceOf(Error);
  });

  it('fail/unparseable-certificate', () => {
    expect(checkCaIdentity(td, { raw: Buffer.from('nope') } as PeerCertificate)).toBeInstanceOf(Error);
  });
});
