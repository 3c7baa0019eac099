// The whole sidecar pair with TCP tunnels, as `meshauth sidecar` runs it (startSidecar with outbound.tcp and
// inbound.tcp from the config), in front of a real redis-server and driven by the real redis-cli: the allowed
// identity's commands work; another identity with the same route is closed by the server sidecar's policy; a
// policy rule with an HTTP-only condition that can match TCP fails the start, naming the rule; a reload with one is
// refused (counted, logged) and the previous policy keeps serving the tunnels.
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningSidecar } from '../../src/sidecar/index.js';
import { HAVE_REDIS, type RedisServer, startRedis } from '../helpers/redis-server.js';
import { run } from '../helpers/tcp-client.js';
import { type DocumentSidecar, startDocumentSidecar } from '../helpers/tcp-tunnel-pair.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

describe.skipIf(!HAVE_REDIS)('sidecar pair with TCP tunnels and redis', () => {
  let ca: TestCa;
  let redis: RedisServer;
  let dir: string;
  let server: DocumentSidecar;
  let orders: DocumentSidecar;
  let ordersPort: number;
  let frontendPort: number;
  const started: RunningSidecar[] = [];

  async function sidecar(id: string, document: Record<string, unknown>): Promise<DocumentSidecar> {
    const running = await startDocumentSidecar(ca, id, document);
    started.push(running.sidecar);
    return running;
  }

  const policyText = (extraRule = '') => `apiVersion: meshauth.dev/v1
kind: Policy
rules:
  - name: orders-to-redis
    action: allow
    from: { ids: ["spiffe://example.org/ns/shop/sa/orders"] }
${extraRule}`;

  beforeAll(async () => {
    ca = await TestCa.create();
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'meshauth-tcp-sidecar-'));
    writeFileSync(join(dir, 'policy.yaml'), policyText());
    server = await sidecar('spiffe://example.org/ns/data/sa/redis', {
      inbound: {
        listen: '127.0.0.1:0',
        app: '127.0.0.1:1',
        policy: join(dir, 'policy.yaml'),
        tcp: { app: `127.0.0.1:${redis.port}` },
      },
    });
    const route = {
      address: `127.0.0.1:${server.sidecar.inboundPort}`,
      ids: ['spiffe://example.org/ns/data/sa/redis'],
    };
    // Port 0 in the listen key: the sidecar picks a free port and reports it in tcpPorts under the same key.
    orders = await sidecar('spiffe://example.org/ns/shop/sa/orders', {
      inbound: { listen: '127.0.0.1:0', app: '127.0.0.1:1' },
      outbound: { listen: '127.0.0.1:0', tcp: { '127.0.0.1:0': route } },
    });
    ordersPort = orders.sidecar.tcpPorts.get('127.0.0.1:0') ?? 0;
    const frontend = await sidecar('spiffe://example.org/ns/shop/sa/frontend', {
      inbound: { listen: '127.0.0.1:0', app: '127.0.0.1:1' },
      outbound: { listen: '127.0.0.1:0', tcp: { '127.0.0.1:0': route } },
    });
    frontendPort = frontend.sidecar.tcpPorts.get('127.0.0.1:0') ?? 0;
  });
  afterAll(async () => {
    for (const s of started.reverse()) await s.close(0);
    await redis?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  const cli = (port: number, ...args: string[]) => run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args]);

  it('ok/redis-cli through the orders sidecar reaches redis over mTLS', async () => {
    expect((await cli(ordersPort, 'SET', 'k', 'through the sidecars')).stdout.trim()).toBe('OK');
    expect((await cli(ordersPort, 'GET', 'k')).stdout.trim()).toBe('through the sidecars');
    expect(await server.metrics.registry.metrics()).toContain(
      'meshauth_tcp_connections_total{direction="inbound",peer_id="spiffe://example.org/ns/shop/sa/orders",result="established"} 2',
    );
    expect(await orders.metrics.registry.metrics()).toContain(
      'meshauth_tcp_connections_total{direction="outbound",peer_id="spiffe://example.org/ns/data/sa/redis",result="established"} 2',
    );
  });

  it('fail/the frontend identity is closed by the redis sidecar’s policy', async () => {
    const result = await cli(frontendPort, 'PING');
    expect(result.stdout).not.toContain('PONG');
    expect(`${result.stdout}${result.stderr}`).toMatch(/closed|reset/i);
    expect(await server.metrics.registry.metrics()).toContain(
      'meshauth_tcp_connections_total{direction="inbound",peer_id="spiffe://example.org/ns/shop/sa/frontend",result="denied"} 1',
    );
  });

  it('fail/a policy with a path rule that can match TCP fails the start and names the rule', async () => {
    const file = join(dir, 'l7.yaml');
    writeFileSync(file, policyText('  - name: no-admin\n    action: deny\n    to: { paths: ["/admin/*"] }\n'));
    await expect(
      sidecar('spiffe://example.org/ns/data/sa/redis2', {
        inbound: { listen: '127.0.0.1:0', app: '127.0.0.1:1', policy: file, tcp: { app: `127.0.0.1:${redis.port}` } },
      }),
    ).rejects.toMatchObject({
      code: 'MESHAUTH_ERR_POLICY_INVALID',
      message: expect.stringContaining('"no-admin" to.paths'),
    });
  });

  it('fail/a reloaded policy with an HTTP-only rule that can match TCP is refused; the previous policy stays', async () => {
    const file = join(dir, 'policy.yaml');
    const failures = async () =>
      Number(
        /meshauth_policy_reloads_total\{result="failure"\} (\d+)/.exec(await server.metrics.registry.metrics())?.[1] ??
          0,
      );
    const before = await failures();
    writeFileSync(`${file}.tmp`, policyText('  - name: no-admin\n    action: deny\n    to: { paths: ["/admin/*"] }\n'));
    renameSync(`${file}.tmp`, file);
    try {
      await waitFor('the reload to be attempted', async () => (await failures()) !== before, 15_000, 100);
      expect((await cli(ordersPort, 'PING')).stdout.trim()).toBe('PONG');
      expect(await server.metrics.registry.metrics()).not.toContain('rule="tcp-policy-invalid"');
    } finally {
      writeFileSync(`${file}.tmp`, policyText());
      renameSync(`${file}.tmp`, file);
    }
  }, 40_000);
});
