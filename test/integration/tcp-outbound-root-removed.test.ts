// A root that leaves the trust bundle cuts the outbound TCP tunnels whose server chains to it, as the inbound cuts
// its clients of that root (inbound-root-removed.test.ts) and the HTTP outbound retires its sessions. Found in
// review: an open tunnel to a server of the removed root kept carrying bytes until the server's SVID expired.
// A connection accepted before the removal, still in its handshake, is refused when the handshake ends.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LogLines, logLines } from '../helpers/log-lines.js';
import { rawClient, until } from '../helpers/tcp-client.js';
import {
  connectAcrossBundleChange,
  heldAddress,
  startRetiringRootTunnel,
  startTcpTunnelPair,
  type TcpApp,
  type TcpTunnelPair,
} from '../helpers/tcp-tunnel-pair.js';
import type { TestCa } from '../helpers/test-ca.js';

describe('outbound TCP tunnels when a root leaves the bundle', () => {
  let kept: TestCa;
  let app: TcpApp;
  let toRetired: TcpTunnelPair;
  let toKept: TcpTunnelPair;
  let log: LogLines;

  beforeAll(async () => {
    log = logLines('sidecar', 'info');
    const tunnel = await startRetiringRootTunnel({ logger: log.logger });
    ({ kept, app, pair: toRetired } = tunnel);
    toKept = await startTcpTunnelPair(kept, { appPort: app.port, bundle: tunnel.bothRoots });
  });
  afterAll(async () => {
    await toRetired?.close();
    await toKept?.close();
    await app?.close();
  });

  it('fail/the tunnel to the removed root’s server is reset, counted and logged; ok/the kept root’s tunnel carries on', async () => {
    const goes = await rawClient(toRetired.port);
    const stays = await rawClient(toKept.port);
    goes.socket.write('before');
    stays.socket.write('before');
    await until('both echo', () => goes.received().toString() === 'before' && stays.received().toString() === 'before');

    for (const pair of [toRetired, toKept]) {
      pair.clientHolder.set({ svid: pair.clientSvid.svid, bundle: kept.bundle });
    }
    expect((await goes.closed)?.code).toBe('ECONNRESET');
    const text = await toRetired.clientMetrics.registry.metrics();
    expect(text).toContain('meshauth_connections_rejected_total{direction="outbound",reason="root_removed"} 1');
    expect(log.find({ direction: 'outbound', protocol: 'tcp', connections: 1 })).toHaveLength(1);

    stays.socket.write('+after');
    await until('the kept tunnel echoes', () => stays.received().toString() === 'before+after');
    expect(await toKept.clientMetrics.registry.metrics()).not.toContain('reason="root_removed"');
    stays.socket.destroy();
  });
});

describe('an outbound TCP connection begun before a root left the bundle', () => {
  let kept: TestCa;
  let retired: TestCa;
  let app: TcpApp;
  let pair: TcpTunnelPair;
  let log: LogLines;
  // The name's answer is held until the root has left: the connection was accepted, and took its TLS context (both
  // roots), before the removal, so its handshake verifies the server against the roots before it.
  const held = heldAddress();

  beforeAll(async () => {
    log = logLines('sidecar', 'info');
    ({ kept, retired, app, pair } = await startRetiringRootTunnel({ logger: log.logger, held }));
  });
  afterAll(async () => {
    held.answer();
    await pair?.close();
    await app?.close();
  });

  it('fail/a server verified against the roots before the removal is refused at the end of its handshake', async () => {
    const client = await connectAcrossBundleChange(pair, held, kept.bundle);

    // A tunnel let through would echo; the refusal resets the client without a byte.
    expect(client.received().length).toBe(0);
    expect((await client.closed)?.code).toBe('ECONNRESET');
    const text = await pair.clientMetrics.registry.metrics();
    expect(text).toContain('meshauth_tls_handshake_failures_total{direction="outbound",reason="unknown_ca"} 1');
    const refused = log.find({ event: 'tcp_connection_refused', code: 'MESHAUTH_ERR_PEER_IDENTITY' });
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ result: 'peer_identity', peer: retired.idFor('/ns/data/sa/old').toString() });
    expect(text).not.toContain('meshauth_tcp_connections_opened_total');
  });
});
