// `ca serve --k8s-renew-with-token`: a renewal with the SVID alone is refused (401
// MESHAUTH_ERR_CA_RENEWAL_TOKEN_REQUIRED), and the agent, told so once, renews as it bootstraps, with the pod's current
// service-account token, keeping its ID. A deleted pod's token fails TokenReview, so its SVID stops being renewed.
// Found by a probe: without it, whoever held a copy of a deleted pod's SVID and key could renew it for ever.
import { afterEach, describe, expect, it } from 'vitest';
import * as caClient from '../../src/agent/ca-client.js';
import type { Credentials } from '../../src/agent/index.js';
import type { MeshauthError } from '../../src/errors/index.js';
import { createCsrPem, generateKeyPair } from '../../src/pki/index.js';
import { type FakeApiServer, reviewingCaOptions, startFakeApiServer } from '../helpers/fake-kube-apiserver.js';
import { pod } from '../helpers/projected-token.js';
import { waitFor } from '../helpers/wait.js';
import { CaHarness, type Cleanup, rotations, runCleanups, startAgent } from './agent-harness.js';

const cleanups: Cleanup[] = [];
afterEach(() => runCleanups(cleanups));

const ID = 'spiffe://example.org/ns/shop/sa/orders';

describe('ca serve --k8s-renew-with-token', () => {
  it('ok/the agent renews with its token, keeping its ID; fail/an SVID alone is refused, and a deleted pod stops renewing', async () => {
    const api: FakeApiServer = await startFakeApiServer();
    cleanups.push(() => api.close());
    const ca = await CaHarness.start(4_000, cleanups, {
      kubernetes: { ...reviewingCaOptions(api), renewWithToken: true },
    });
    const orders = pod('shop', 'orders');
    const token = await api.mint({ pod: orders });
    const { agent, holder, metrics, logs } = startAgent(ca, token, cleanups, { maxBackoffMs: 1_000 });
    await agent.whenReady();

    // The SVID alone, as an agent of an earlier release renews: refused, naming what the CA wants.
    const current = holder.current as Credentials;
    const keys = await generateKeyPair('p256');
    const refused = await caClient
      .requestSvid(
        {
          caUrl: ca.url,
          bundlePem: current.bundle.toPem(),
          trustDomain: current.bundle.trustDomain,
          clientCertPem: current.svid.certChainPem,
          clientKeyPem: current.svid.privateKeyPem,
        },
        { csrPem: await createCsrPem(keys) },
      )
      .then(
        () => undefined,
        (error: MeshauthError) => error.code,
      );
    expect(refused).toBe('MESHAUTH_ERR_CA_RENEWAL_TOKEN_REQUIRED');

    await waitFor('two renewals', () => logs.filter((l) => l.msg === 'SVID renewed').length >= 2, 15_000);
    expect(logs.filter((l) => String(l.msg).startsWith('the CA renews SVIDs only with'))).toHaveLength(1);
    expect(logs.filter((l) => String(l.msg).startsWith('SVID renewal failed'))).toEqual([]);
    expect(await rotations(metrics, 'failure')).toBe(0);
    expect(holder.current?.svid.id.toString()).toBe(ID);

    // `kubectl delete pod`: its token fails TokenReview, and the SVID is not renewed any more.
    api.livePods.delete(orders.podUid);
    await waitFor('a refused renewal', () => logs.some((l) => String(l.msg).startsWith('SVID renewal failed')), 15_000);
    await waitFor('the SVID to expire', () => !holder.isValid(new Date()), 15_000);
  }, 60_000);
});
