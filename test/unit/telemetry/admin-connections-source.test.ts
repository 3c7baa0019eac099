// The admin port's per-client share counts an IPv6 client by its /64: a host holds many addresses of its subnet
// (privacy addresses, a routed /64), and counted by address each would have had 16 connections of its own, enough
// for a handful of them to take all 64 places and keep the kubelet's probes out. IPv4 (and IPv4-mapped IPv6) by
// address. The sockets are unconnected ones with the address a connection from there would report: the loopback
// interface has one IPv6 address, so two of one /64 cannot connect here for real.
import { Server } from 'node:http';
import { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ADMIN_MAX_CONNECTIONS_PER_SOURCE, limitAdminConnections } from '../../../src/telemetry/admin-connections.js';
import { Metrics, silentLogger } from '../../../src/telemetry/index.js';

function connectionFrom(server: Server, remoteAddress: string): Socket {
  const socket = new Socket();
  Object.defineProperty(socket, 'remoteAddress', { value: remoteAddress });
  server.emit('connection', socket);
  return socket;
}

function refusedPerSource(metrics: Metrics): Promise<string> {
  return metrics.registry.getSingleMetricAsString('meshauth_connections_rejected_total');
}

describe('admin port: connections per client', () => {
  it('fail/one IPv6 /64 under many addresses → one share', async () => {
    const server = new Server();
    const metrics = new Metrics();
    limitAdminConnections(server, metrics, silentLogger());
    const sockets = Array.from({ length: ADMIN_MAX_CONNECTIONS_PER_SOURCE + 1 }, (_, i) =>
      connectionFrom(server, `2001:db8:0:1::${(i + 1).toString(16)}`),
    );
    expect(sockets.filter((s) => s.destroyed)).toHaveLength(1);
    expect(sockets.at(-1)?.destroyed).toBe(true);
    expect(await refusedPerSource(metrics)).toContain('reason="max_connections_per_source"} 1');
    // Another /64 has a share of its own.
    expect(connectionFrom(server, '2001:db8:0:2::1').destroyed).toBe(false);
    for (const socket of sockets) socket.destroy();
  });

  it('ok/IPv4 clients by address, IPv4-mapped as the IPv4 address', async () => {
    const server = new Server();
    const metrics = new Metrics();
    limitAdminConnections(server, metrics, silentLogger());
    const one = Array.from({ length: ADMIN_MAX_CONNECTIONS_PER_SOURCE }, () => connectionFrom(server, '10.0.0.5'));
    expect(connectionFrom(server, '::ffff:10.0.0.5').destroyed).toBe(true);
    expect(connectionFrom(server, '10.0.0.6').destroyed).toBe(false);
    expect(one.some((s) => s.destroyed)).toBe(false);
    for (const socket of one) socket.destroy();
  });
});
