// outbound.timeout counts from the request's arrival, also while the request waits for an endpoint or a connection:
// a name's first answer, a connect, and the retry of a failed connect share it. Before, each wait had a limit of its
// own (the resolver's retries, a connect timeout of min(timeout, 10 s) per attempt) and the stream's timeout started
// only after them, so with `timeout: 600ms` a silent DNS server or a black-holed endpoint answered after seconds,
// with 503. Now the app gets 504 MESHAUTH_ERR_UPSTREAM_TIMEOUT (reason timeout), and nothing was sent. The HTTP/1.1
// client already answered 504 here (a request waiting for its pool's connection had the timeout); its cases guard that
// the wait before it, now counted too, still leaves it the rest.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logLines } from '../helpers/log-lines.js';
import { startTestSidecar, type TestSidecar, testConfig, viaProxy } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

describe('outbound.timeout covers the wait before a stream', () => {
  let sidecar: TestSidecar;
  /** The same routes with `outbound.http2: false`: the HTTP/1.1 client connects while the request waits in its pool. */
  let http1: TestSidecar;
  let silentDns: UdpSocket;
  let blackHole: Server;
  const held = new Set<Socket>();
  const logs = logLines('outbound', 'info');
  let dnsQueries = 0;

  beforeAll(async () => {
    const ca = await TestCa.create();
    // A DNS server that reads every query and answers none: the resolver waits 2 s per try, two tries.
    silentDns = createSocket('udp4');
    silentDns.on('message', () => {
      dnsQueries += 1;
    });
    await new Promise<void>((resolve) => silentDns.bind(0, '127.0.0.1', resolve));
    // A peer that accepts the TCP connection and never says a word: the TLS handshake hangs.
    blackHole = createTcpServer((socket) => {
      held.add(socket);
      socket.on('error', () => undefined);
      socket.once('close', () => held.delete(socket));
    });
    await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
    const peerId = ca.idFor('/ns/b/sa/b');
    const config = testConfig({
      appPort: 1,
      outboundTimeout: '600ms',
      dnsServers: [`127.0.0.1:${(silentDns.address() as AddressInfo).port}`],
      routes: {
        'unanswered.mesh': { address: 'orders.unanswered.test:15006', ids: [peerId] },
        'silent.mesh': { address: `127.0.0.1:${(blackHole.address() as AddressInfo).port}`, ids: [peerId] },
      },
    });
    sidecar = await startTestSidecar(ca, ca.idFor('/ns/a/sa/a'), config, { logger: logs.logger });
    http1 = await startTestSidecar(
      ca,
      ca.idFor('/ns/a/sa/a'),
      { ...config, outbound: { ...config.outbound, http2: false } },
      { logger: logs.logger },
    );
  });
  afterAll(async () => {
    await sidecar?.sidecar.close(0);
    await http1?.sidecar.close(0);
    for (const socket of held) socket.destroy();
    await new Promise((resolve) => blackHole?.close(resolve));
    silentDns?.close();
  });

  it('fail/a name the DNS server never answers → 504 timeout, not the resolver failure after its retries', async () => {
    const res = await viaProxy(sidecar.sidecar.outboundPort, 'http://unanswered.mesh/');
    expect(dnsQueries).toBeGreaterThan(0);
    expect(res.status).toBe(504);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'MESHAUTH_ERR_UPSTREAM_TIMEOUT' });
  });

  it.each([
    ['HTTP/2', 'GET', undefined],
    ['HTTP/2', 'POST', 'a body'],
    ['HTTP/1.1', 'GET', undefined],
    ['HTTP/1.1', 'POST', 'a body'],
  ])(
    'fail/%s: %s to an endpoint whose handshake never ends → 504 timeout, not 503 after a connect and its retry',
    async (protocol, method, body) => {
      const caller = protocol === 'HTTP/2' ? sidecar : http1;
      const res = await viaProxy(caller.sidecar.outboundPort, 'http://silent.mesh/', {
        method,
        ...(body === undefined ? {} : { body }),
      });
      expect(res.status).toBe(504);
      expect(JSON.parse(res.body)).toMatchObject({ code: 'MESHAUTH_ERR_UPSTREAM_TIMEOUT' });
    },
  );
});
