// The words of a CA identity check refusal: what the CA's certificate carries and, for a CA of another trust
// domain, both trust domains, never the internal code the check uses to recognise its own error.
import type { PeerCertificate } from 'node:tls';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkCaIdentity } from '../../../src/agent/ca-client.js';
import { caIdentityRefusal, caTlsFailureOf } from '../../../src/agent/ca-tls-failure.js';
import { TrustDomain } from '../../../src/identity/index.js';
import { TestCa } from '../../helpers/test-ca.js';

const URL = 'https://ca.example:8443';
let ca: TestCa;

beforeAll(async () => {
  ca = await TestCa.create();
});

async function refusalWords(configured: string, options: Parameters<TestCa['issue']>[0], ours?: string) {
  const svid = await ca.issue(options);
  const error = checkCaIdentity(TrustDomain.parse(configured), {
    raw: Buffer.from(svid.leaf.rawData),
  } as PeerCertificate);
  const failure = caTlsFailureOf(error);
  if (failure?.kind !== 'identity') throw new Error(`expected an identity failure, got ${failure?.kind}`);
  return caIdentityRefusal(URL, failure, ours);
}

describe('caIdentityRefusal', () => {
  it('fail/the CA of another trust domain → both trust domains, in words', async () => {
    const words = await refusalWords('other.org', { id: 'spiffe://example.org/meshauth/ca' });
    expect(words).toBe(
      `the CA at ${URL} is of trust domain example.org, this config's trustDomain is other.org ` +
        '(its certificate carries spiffe://example.org/meshauth/ca, not spiffe://other.org/meshauth/ca)',
    );
  });

  it('fail/the trust domain came from the bundle → says so instead of the config', async () => {
    const words = await refusalWords(
      'other.org',
      { id: 'spiffe://example.org/meshauth/ca' },
      'the trust domain of the trust bundle',
    );
    expect(words).toContain(
      `the CA at ${URL} is of trust domain example.org, the trust domain of the trust bundle is other.org`,
    );
  });

  it.each([
    [
      'fail/a workload ID of the same trust domain',
      { id: 'spiffe://example.org/ns/shop/sa/web' },
      'it carries spiffe://example.org/ns/shop/sa/web',
    ],
    ['fail/no URI SAN', { defects: { uris: [], dnsNames: ['ca.example.org'] } }, 'it carries no URI SAN'],
    [
      "fail/two URI SANs, one the CA's",
      { defects: { uris: ['spiffe://example.org/meshauth/ca', 'spiffe://example.org/x'] } },
      'it carries spiffe://example.org/meshauth/ca, spiffe://example.org/x',
    ],
  ])('%s → not the CA, no trust-domain mismatch claimed', async (_name, options, carries) => {
    const words = await refusalWords('example.org', options);
    expect(words).toBe(
      "its certificate does not carry the CA's SPIFFE ID spiffe://example.org/meshauth/ca as its one URI SAN " +
        `(${carries}): check that the URL names the meshauth CA and not another server`,
    );
  });

  it('fail/an unparseable certificate → says so, without the internal code', () => {
    const error = checkCaIdentity(TrustDomain.parse('example.org'), { raw: Buffer.from('nope') } as PeerCertificate);
    const failure = caTlsFailureOf(error);
    if (failure?.kind !== 'identity') throw new Error('expected an identity failure');
    const words = caIdentityRefusal(URL, failure);
    expect(words).toMatch(/^its certificate cannot be parsed/);
    expect(words).not.toContain('ERR_MESHAUTH');
  });
});
