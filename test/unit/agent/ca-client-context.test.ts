// The CA client's TLS context: roots, certificate or key that OpenSSL cannot load are a TLS failure raised before
// anything is sent (port 1 would otherwise answer "unreachable").
import { describe, expect, it } from 'vitest';
import { requestSvid } from '../../../src/agent/ca-client.js';
import type { MeshauthError } from '../../../src/errors/index.js';
import { TrustDomain } from '../../../src/identity/index.js';
import { TestCa } from '../../helpers/test-ca.js';

describe('CA client context', () => {
  it('fail/a renewal key OpenSSL cannot load → CA_UNAVAILABLE reason tls, nothing sent', async () => {
    const ca = await TestCa.create('example.org');
    const svid = await ca.issue();
    const error = (await requestSvid(
      {
        caUrl: 'https://127.0.0.1:1',
        trustDomain: TrustDomain.parse('example.org'),
        bundlePem: ca.bundlePem,
        clientCertPem: svid.chainPem,
        clientKeyPem: 'not a key',
      },
      { csrPem: 'unused' },
    ).catch((e: unknown) => e)) as MeshauthError;
    expect(error.code).toBe('MESHAUTH_ERR_CA_UNAVAILABLE');
    expect(error.reason).toBe('tls');
    expect(error.message).toMatch(/failed TLS authentication/);
  });
});
