// PostgreSQL behind a TCP tunnel with the real psql client (outbound listener → mTLS meshauth-tcp/1 → inbound
// handler → postgres): queries work for the allowed identity; another identity is closed after the handshake.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePolicy, parsePolicy } from '../../src/authz/index.js';
import { HAVE_POSTGRES, type PostgresServer, startPostgres } from '../helpers/postgres-server.js';
import { run } from '../helpers/tcp-client.js';
import { startTcpTunnelPair, type TcpTunnelPair } from '../helpers/tcp-tunnel-pair.js';
import { TestCa } from '../helpers/test-ca.js';

if (!HAVE_POSTGRES) console.warn('tcp-postgres: initdb/postgres/psql not on PATH (Debian postgresql), skipping');

describe.skipIf(!HAVE_POSTGRES)('postgres through a TCP tunnel', () => {
  let pg: PostgresServer;
  let allowed: TcpTunnelPair;
  let denied: TcpTunnelPair;
  let ca: TestCa;

  beforeAll(async () => {
    ca = await TestCa.create();
    pg = await startPostgres();
    const policy = compilePolicy(
      parsePolicy(
        `apiVersion: meshauth.dev/v1
kind: Policy
rules:
  - name: orders-to-db
    action: allow
    from: { ids: ["${ca.idFor('/ns/shop/sa/orders')}"] }
`,
        'policy.yaml',
      ),
    );
    allowed = await startTcpTunnelPair(ca, {
      appPort: pg.port,
      clientId: ca.idFor('/ns/shop/sa/orders'),
      policy: () => policy,
    });
    denied = await startTcpTunnelPair(ca, {
      appPort: pg.port,
      clientId: ca.idFor('/ns/shop/sa/web'),
      policy: () => policy,
    });
  }, 90_000);
  afterAll(async () => {
    await allowed?.close();
    await denied?.close();
    await pg?.stop();
  });

  const psql = (port: number, sql: string) =>
    run('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-v', 'ON_ERROR_STOP=1', '-Atc', sql]);

  it('ok/psql creates, writes and reads a table through the tunnel', async () => {
    expect((await psql(allowed.port, 'create table orders (id int primary key, item text)')).code).toBe(0);
    expect((await psql(allowed.port, "insert into orders values (1, 'coffee'), (2, 'tea')")).code).toBe(0);
    const read = await psql(allowed.port, 'select item from orders order by id');
    expect(read.stdout.trim().split('\n')).toEqual(['coffee', 'tea']);
  });

  it('fail/an identity the policy does not allow cannot connect', async () => {
    const result = await psql(denied.port, 'select 1');
    expect(result.code).not.toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/closed the connection|reset|terminated/i);
    expect(await denied.serverMetrics.registry.metrics()).toContain(
      `meshauth_tcp_connections_total{direction="inbound",peer_id="${ca.idFor('/ns/shop/sa/web')}",result="denied"}`,
    );
  });
});
