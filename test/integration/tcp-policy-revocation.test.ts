// A TCP tunnel is authorized once, when it opens. HTTP asks the policy per request, so
// a reloaded policy that no longer allows a caller takes effect on its very next request; a tunnel must not keep
// the access the new policy took away (a database connection pool holds its connections for hours, and only the
// peer's SVID expiry would end them). The whole sidecar pair, as `meshauth sidecar` runs it, with a policy file
// that is replaced while a tunnel is open: the tunnel is reset (never a FIN), counted and logged; a tunnel the new
// policy still allows keeps running.
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningSidecar } from '../../src/sidecar/index.js';
import { rawClient, until } from '../helpers/tcp-client.js';
import {
  type DocumentSidecar,
  echo,
  startDocumentSidecar,
  startTcpApp,
  type TcpApp,
} from '../helpers/tcp-tunnel-pair.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

describe('tcp tunnel: the policy changes while it is open', () => {
  let ca: TestCa;
  let app: TcpApp;
  let dir: string;
  let server: DocumentSidecar;
  let ordersPort: number;
  let billingPort: number;
  const started: RunningSidecar[] = [];

  async function sidecar(id: string, document: Record<string, unknown>): Promise<DocumentSidecar> {
    const running = await startDocumentSidecar(ca, id, document);
    started.push(running.sidecar);
    return running;
  }

  const policyText = (ids: readonly string[], mode = 'enforce') => `apiVersion: meshauth.dev/v1
kind: Policy
mode: ${mode}
rules:
  - name: callers-to-db
    action: allow
    from: { ids: [${ids.map((id) => `"${id}"`).join(', ')}] }
`;
  const ORDERS = 'spiffe://example.org/ns/shop/sa/orders';
  const BILLING = 'spiffe://example.org/ns/shop/sa/billing';

  beforeAll(async () => {
    ca = await TestCa.create();
    app = await startTcpApp(echo);
    dir = mkdtempSync(join(tmpdir(), 'meshauth-tcp-revoke-'));
    writeFileSync(join(dir, 'policy.yaml'), policyText([ORDERS, BILLING]));
    server = await sidecar('spiffe://example.org/ns/data/sa/db', {
      inbound: {
        listen: '127.0.0.1:0',
        app: '127.0.0.1:1',
        policy: join(dir, 'policy.yaml'),
        tcp: { app: `127.0.0.1:${app.port}` },
      },
    });
    const route = { address: `127.0.0.1:${server.sidecar.inboundPort}`, ids: ['spiffe://example.org/ns/data/sa/db'] };
    const orders = await sidecar(ORDERS, {
      inbound: { listen: '127.0.0.1:0', app: '127.0.0.1:1' },
      outbound: { listen: '127.0.0.1:0', tcp: { '127.0.0.1:0': route } },
    });
    ordersPort = orders.sidecar.tcpPorts.get('127.0.0.1:0') ?? 0;
    const billing = await sidecar(BILLING, {
      inbound: { listen: '127.0.0.1:0', app: '127.0.0.1:1' },
      outbound: { listen: '127.0.0.1:0', tcp: { '127.0.0.1:0': route } },
    });
    billingPort = billing.sidecar.tcpPorts.get('127.0.0.1:0') ?? 0;
  });
  afterAll(async () => {
    for (const s of started.reverse()) await s.close(0);
    await app?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  /** Replaces the policy file by rename and waits until the server sidecar has applied it. */
  async function replacePolicy(text: string): Promise<void> {
    const reloads = async () =>
      Number(
        /meshauth_policy_reloads_total\{result="success"\} (\d+)/.exec(await server.metrics.registry.metrics())?.[1] ??
          0,
      );
    const before = await reloads();
    const file = join(dir, 'policy.yaml');
    writeFileSync(`${file}.tmp`, text);
    renameSync(`${file}.tmp`, file);
    await waitFor('the new policy to be applied', async () => (await reloads()) !== before, 15_000);
  }

  it('fail/a tunnel of a caller the reloaded policy no longer allows is reset; an allowed one keeps running', async () => {
    const revoked = await rawClient(ordersPort);
    const kept = await rawClient(billingPort);
    revoked.socket.write('orders');
    kept.socket.write('billing');
    await until(
      'both echo',
      () => revoked.received().toString() === 'orders' && kept.received().toString() === 'billing',
    );

    await replacePolicy(policyText([BILLING])); // orders loses its access

    // A new tunnel of orders is refused at once (that already worked) …
    const fresh = await rawClient(ordersPort);
    expect((await fresh.closed)?.code).toBe('ECONNRESET');

    // … and so is the one it opened before the change: reset, never a clean end, and nothing echoed any more.
    const closed = await Promise.race([revoked.closed, new Promise<'open'>((r) => setTimeout(() => r('open'), 3_000))]);
    expect(closed, 'the revoked tunnel is still open 3 s after the reload').not.toBe('open');
    expect((closed as { code?: string } | undefined)?.code).toBe('ECONNRESET');

    // The caller the new policy still allows is not touched.
    kept.socket.write(' again');
    await until('kept echo', () => kept.received().toString() === 'billing again');
    const text = await server.metrics.registry.metrics();
    expect(text).toContain('meshauth_connections_rejected_total{direction="inbound",reason="policy_changed"} 1');
    kept.socket.destroy();
  }, 40_000);

  it('ok/in audit mode a tunnel the reloaded policy denies is logged and kept', async () => {
    const audited = await rawClient(billingPort);
    audited.socket.write('billing');
    await until('billing echo', () => audited.received().toString() === 'billing');
    await replacePolicy(policyText([ORDERS], 'audit')); // billing denied, but only audited

    audited.socket.write(' still');
    await until('audited echo', () => audited.received().toString() === 'billing still');
    const text = await server.metrics.registry.metrics();
    // Only the enforced revocation of the test above was counted.
    expect(text).toContain('meshauth_connections_rejected_total{direction="inbound",reason="policy_changed"} 1');
    audited.socket.destroy();
  }, 40_000);
});
