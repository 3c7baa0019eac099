// A real Redis behind a TCP tunnel (outbound listener → mTLS meshauth-tcp/1 → inbound handler → redis-server),
// driven by the real redis-cli with TestCa SVIDs: commands work, a 100 MiB value goes up and comes back
// byte-identical (sha256), and an identity the policy does not allow cannot connect.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePolicy, parsePolicy } from '../../src/authz/index.js';
import { HAVE_REDIS, type RedisServer, startRedis } from '../helpers/redis-server.js';
import { run } from '../helpers/tcp-client.js';
import { startTcpTunnelPair, type TcpTunnelPair } from '../helpers/tcp-tunnel-pair.js';
import { TestCa } from '../helpers/test-ca.js';

if (!HAVE_REDIS)
  console.warn('tcp-redis: redis-server/redis-cli not on PATH (Debian redis-server, redis-tools), skipping');

const MiB = 1024 * 1024;

describe.skipIf(!HAVE_REDIS)('redis through a TCP tunnel', () => {
  let ca: TestCa;
  let redis: RedisServer;
  let allowed: TcpTunnelPair;
  let denied: TcpTunnelPair;

  beforeAll(async () => {
    ca = await TestCa.create();
    redis = await startRedis();
    const text = `apiVersion: meshauth.dev/v1
kind: Policy
rules:
  - name: orders-to-redis
    action: allow
    from: { ids: ["${ca.idFor('/ns/shop/sa/orders')}"] }
    to: { ports: [${redis.port}] }
`;
    const policy = compilePolicy(parsePolicy(text, 'policy.yaml'));
    allowed = await startTcpTunnelPair(ca, {
      appPort: redis.port,
      clientId: ca.idFor('/ns/shop/sa/orders'),
      policy: () => policy,
    });
    denied = await startTcpTunnelPair(ca, {
      appPort: redis.port,
      clientId: ca.idFor('/ns/shop/sa/frontend'),
      policy: () => policy,
    });
  });
  afterAll(async () => {
    await allowed?.close();
    await denied?.close();
    await redis?.stop();
  });

  const cli = (port: number, ...args: string[]) => run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args]);

  it('ok/redis-cli SET and GET through the tunnel; both sides count the peer', async () => {
    expect((await cli(allowed.port, 'SET', 'greeting', 'hello mesh')).stdout.trim()).toBe('OK');
    expect((await cli(allowed.port, 'GET', 'greeting')).stdout.trim()).toBe('hello mesh');
    expect(await allowed.serverMetrics.registry.metrics()).toContain(
      `meshauth_tcp_connections_total{direction="inbound",peer_id="${ca.idFor('/ns/shop/sa/orders')}",result="established"} 2`,
    );
    expect(await allowed.clientMetrics.registry.metrics()).toContain(
      `meshauth_tcp_connections_total{direction="outbound",peer_id="${allowed.serverSvid.id}",result="established"} 2`,
    );
  });

  it('fail/an identity the policy does not allow cannot connect', async () => {
    const result = await cli(denied.port, 'PING');
    expect(result.stdout).not.toContain('PONG');
    expect(`${result.stdout}${result.stderr}`).toMatch(/closed|reset/i);
    expect(await denied.serverMetrics.registry.metrics()).toContain(
      `meshauth_tcp_connections_total{direction="inbound",peer_id="${ca.idFor('/ns/shop/sa/frontend')}",result="denied"} 1`,
    );
  });

  it('ok/a 100 MiB value goes up and comes back byte-identical (sha256)', async () => {
    // Printable bytes so redis-cli --raw prints the value as is (plus one newline).
    const value = randomBytes(75 * MiB).toString('base64');
    expect(value.length).toBe(100 * MiB);
    const sent = createHash('sha256').update(value).digest('hex');
    const set = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(allowed.port), '-x', 'SET', 'big'], {
      input: value,
      timeoutMs: 60_000,
    });
    expect(set.stdout.trim()).toBe('OK');
    const got = await new Promise<{ hash: string; bytes: number }>((resolve, reject) => {
      const child = spawn('redis-cli', ['-h', '127.0.0.1', '-p', String(allowed.port), '--raw', 'GET', 'big']);
      const hash = createHash('sha256');
      let bytes = 0;
      let last: Buffer = Buffer.alloc(0);
      child.stdout.on('data', (chunk: Buffer) => {
        // Hash all but the final newline redis-cli appends: hold back the last byte of each chunk.
        if (last.length > 0) hash.update(last);
        hash.update(chunk.subarray(0, chunk.length - 1));
        last = chunk.subarray(chunk.length - 1);
        bytes += chunk.length;
      });
      child.on('error', reject);
      child.on('close', () => resolve({ hash: hash.digest('hex'), bytes: bytes - 1 }));
    });
    expect(got.bytes).toBe(100 * MiB);
    expect(got.hash).toBe(sent);
    const text = await allowed.clientMetrics.registry.metrics();
    const sentBytes = Number(/meshauth_tcp_sent_bytes_total\{direction="outbound"\} (\d+)/.exec(text)?.[1]);
    const receivedBytes = Number(/meshauth_tcp_received_bytes_total\{direction="outbound"\} (\d+)/.exec(text)?.[1]);
    expect(sentBytes).toBeGreaterThan(100 * MiB);
    expect(receivedBytes).toBeGreaterThan(100 * MiB);
  }, 120_000);
});
