// A policy reload asks every open TCP tunnel again, and judges `when.time` at the time the tunnel was opened, as its
// opening did (docs/tcp.md). Before, the reload used its own clock: an edit of an unrelated rule cut every tunnel
// whose time window had ended since (blamed on "the changed policy"), while without an edit the same tunnels ran on.
// And each re-check counted one more decision per open tunnel in meshauth_authz_decisions_total; now a re-check
// counts only when it cuts the tunnel. The real TcpInboundHandler over real sockets, with its clock injected.
import { createServer, type Server } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { type CompiledPolicy, compilePolicy, parsePolicy } from '../../src/authz/index.js';
import { SpiffeId } from '../../src/identity/index.js';
import { TcpInboundHandler } from '../../src/sidecar/tcp/index.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import type { VerifiedPeer } from '../../src/tls/index.js';
import { type RawClient, rawClient, until } from '../helpers/tcp-client.js';
import { echo, startTcpApp, type TcpApp } from '../helpers/tcp-tunnel-pair.js';

const ORDERS = 'spiffe://example.org/ns/shop/sa/orders';
const OTHER = 'spiffe://example.org/ns/shop/sa/other';

const policy = (callers: readonly string[], extraRule = ''): CompiledPolicy =>
  compilePolicy(
    parsePolicy(
      `apiVersion: meshauth.dev/v1
kind: Policy
rules:
  - name: callers-in-business-hours
    action: allow
    from: { ids: [${callers.map((id) => `"${id}"`).join(', ')}] }
    when: { time: { from: "09:00", to: "17:00" } }
${extraRule}`,
      'policy.yaml',
    ),
  );

const UNRELATED_RULE = `  - name: unrelated
    action: allow
    from: { ids: ["${OTHER}"] }
`;

describe('tcp tunnel: a reload judges when.time at the tunnel opening', () => {
  const servers: Server[] = [];
  const clients: RawClient[] = [];
  const apps: TcpApp[] = [];
  afterEach(async () => {
    for (const client of clients.splice(0)) client.socket.destroy();
    for (const app of apps.splice(0)) await app.close();
    for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
  });

  async function listen(server: Server): Promise<number> {
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as { port: number }).port;
  }

  /** A handler in front of an echo app, a tunnel from ORDERS opened at 16:30 UTC, and the clock to move. */
  async function openTunnelAt1630(current: { policy: CompiledPolicy }) {
    const app = await startTcpApp(echo);
    apps.push(app);
    const appPort = app.port;
    const clock = { now: new Date('2026-01-05T16:30:00Z') };
    const metrics = new Metrics();
    const handler = new TcpInboundHandler({
      app: { host: '127.0.0.1', port: appPort },
      policy: () => current.policy,
      metrics,
      logger: silentLogger(),
      now: () => clock.now,
    });
    const id = SpiffeId.parse(ORDERS);
    const peer = { id, idString: id.toString() } as unknown as VerifiedPeer;
    const meshPort = await listen(
      createServer({ allowHalfOpen: true }, (socket) => handler.adopt(socket as unknown as TLSSocket, peer)),
    );
    const client = await rawClient(meshPort, { allowHalfOpen: true });
    clients.push(client);
    client.socket.write('ping');
    await until('the echo of ping', () => client.received().toString() === 'ping');
    const decisions = async () =>
      (await metrics.registry.getSingleMetricAsString('meshauth_authz_decisions_total'))
        .split('\n')
        .filter((line) => !line.startsWith('#'))
        .join('\n');
    return { handler, client, clock, decisions };
  }

  it('ok/an edit of another rule after the window ended keeps the tunnel, and counts no decision', async () => {
    const current = { policy: policy([ORDERS]) };
    const { handler, client, clock, decisions } = await openTunnelAt1630(current);
    expect(await decisions()).toBe(
      'meshauth_authz_decisions_total{decision="allow",rule="callers-in-business-hours"} 1',
    );

    clock.now = new Date('2026-01-05T17:30:00Z');
    current.policy = policy([ORDERS], UNRELATED_RULE);
    handler.reauthorize();

    expect(handler.open).toBe(1);
    client.socket.write('pong');
    await until('the echo of pong', () => client.received().toString() === 'pingpong');
    expect(await decisions()).toBe(
      'meshauth_authz_decisions_total{decision="allow",rule="callers-in-business-hours"} 1',
    );
    await handler.close(Date.now());
  });

  it('fail/an edit that removes the caller still cuts the tunnel (reset), counted as one deny', async () => {
    const current = { policy: policy([ORDERS]) };
    const { handler, client, clock, decisions } = await openTunnelAt1630(current);

    clock.now = new Date('2026-01-05T16:45:00Z');
    current.policy = policy([OTHER]);
    handler.reauthorize();

    const error = await client.closed;
    expect(error?.code).toBe('ECONNRESET');
    await until('the tunnel released', () => handler.open === 0);
    expect(await decisions()).toBe(
      [
        'meshauth_authz_decisions_total{decision="allow",rule="callers-in-business-hours"} 1',
        'meshauth_authz_decisions_total{decision="deny",rule="default-deny"} 1',
      ].join('\n'),
    );
    await handler.close(Date.now());
  });
});
