// A client chain with two intermediates sent in any order: Node reports a server's peer chain by following issuer links
// that stop when a certificate's issuer is the last one left in the list, so a client that sends (leaf, I_top, I_mid)
// hides I_top while OpenSSL verifies the path through it. An I_top carrying a workload's SPIFFE ID is refused and
// counted reason="bad_intermediate" in either order; the app sees nothing.
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, startTestSidecar, type TestApp, type TestSidecar, testConfig } from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';

const pems = (chainPem: string) => chainPem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];

describe('inbound checks every intermediate a client sends, in any order (C15)', () => {
  let ca: TestCa;
  let app: TestApp;
  let sidecar: TestSidecar;
  const chains: Record<string, TestSvid> = {};

  beforeAll(async () => {
    ca = await TestCa.create('example.org');
    app = await startApp();
    sidecar = await startTestSidecar(ca, ca.idFor('/ns/shop/sa/server'), testConfig({ appPort: app.port }));
    const id = ca.idFor('/ns/shop/sa/client');
    // I_mid has I_top's subject (self-issued), so the root's pathLen 1 lets OpenSSL accept both.
    const top = 'CN=test top intermediate, O=example.org';
    chains.workloadTop = await ca.issueThrough(
      [
        { subject: top, uris: [ca.idFor('/ns/shop/sa/admin')] },
        { subject: top, pathLength: 0 },
      ],
      { id },
    );
    chains.cleanTop = await ca.issueThrough([{ subject: top }, { subject: top, pathLength: 0 }], { id });
  });
  afterAll(async () => {
    await sidecar?.sidecar.close(0);
    await app?.close();
  });

  /** Sends one request with `svid`'s certificates in `order` (indexes into leaf, I_mid, I_top); the status or null. */
  const request = (svid: TestSvid, order: readonly number[]) =>
    new Promise<string | null>((resolve) => {
      const certs = pems(svid.chainPem);
      const socket = connect({
        host: '127.0.0.1',
        port: sidecar.sidecar.inboundPort,
        cert: order.map((i) => certs[i]).join('\n'),
        key: svid.keyPem,
        ca: [ca.bundlePem],
        ALPNProtocols: ['http/1.1'],
        checkServerIdentity: () => undefined, // SVIDs carry no DNS name; the chain is verified against the bundle
      });
      let text = '';
      socket.on('secureConnect', () => socket.write('GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
      socket.on('data', (d: Buffer) => {
        text += d.toString('latin1');
      });
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? null));
    });
  const failures = async () => {
    const text = await sidecar.metrics.registry.getSingleMetricAsString('meshauth_tls_handshake_failures_total');
    const line = text.split('\n').find((l) => l.includes('reason="bad_intermediate"'));
    return line === undefined ? 0 : Number(line.split(' ').at(-1));
  };

  it.each([
    ['fail/workload-ID I_top, sent nearest first (leaf, I_mid, I_top)', [0, 1, 2]],
    ['fail/workload-ID I_top, sent nearest last (leaf, I_top, I_mid)', [0, 2, 1]],
    // Node reports (leaf, I_mid) alone: the path to the root cannot be seen whole, so it is not taken on trust.
    ['fail/clean chain sent nearest last (leaf, I_top, I_mid)', [0, 2, 1], 'cleanTop'],
  ] as Array<[string, number[], string?]>)('%s → refused and counted, app sees nothing', async (_t, order, name) => {
    const seenBefore = app.seen.length;
    const before = await failures();
    expect(await request(chains[name ?? 'workloadTop'] as TestSvid, order)).toBeNull();
    await expect.poll(failures, { timeout: 2_000, interval: 20 }).toBe(before + 1);
    expect(app.seen.length).toBe(seenBefore);
  });

  it('ok/clean two-level chain sent nearest first → served', async () => {
    expect(await request(chains.cleanTop as TestSvid, [0, 1, 2])).toBe('200');
  });
});
