// A client that closes its HTTP/2 connection once its responses are in (curl does, so do browsers and SDKs that drop
// the socket) is not a rejected connection: the gateway's public listener leaves
// meshauth_connections_rejected_total{direction="edge"} and its "public connection closed" warn line alone, as the
// sidecar's inbound and external listeners do. Floods and protocol breaches are still counted
// (gateway-public-limits.test.ts).
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { connect as h2Connect } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BadMesh, startBadMesh } from '../helpers/gateway-bad-service.js';
import { available, runCommand } from '../helpers/sidecar-harness.js';
import { waitFor } from '../helpers/wait.js';

describe('gateway: a client closing its HTTP/2 connection after its responses', () => {
  let m: BadMesh;
  /** The gateway's server-side TCP sockets (node's net.server.socket channel), to wait until each has closed. */
  const accepted: Socket[] = [];
  const closed = new Set<Socket>();
  const onSocket = (message: unknown) => {
    const { socket } = message as { socket: Socket };
    if (socket.localPort !== m?.port) return;
    accepted.push(socket);
    socket.once('close', () => closed.add(socket));
  };
  beforeAll(async () => {
    m = await startBadMesh();
    subscribe('net.server.socket', onSocket);
  });
  afterAll(async () => {
    unsubscribe('net.server.socket', onSocket);
    await m?.close();
  });

  const rejectedEdge = async () =>
    (await m.mesh.metrics.connectionsRejected.get()).values
      .filter((v) => v.labels.direction === 'edge')
      .reduce((sum, v) => sum + v.value, 0);
  const closedLines = () => m.mesh.log.lines.filter((l) => l.event === 'gateway_connection_closed').length;
  const allClosed = () => accepted.length > 0 && accepted.every((s) => closed.has(s));

  it.runIf(available('curl'))('ok/five curl --http2 requests → 200 each, no rejected connection', async () => {
    const [rejectedBefore, linesBefore, acceptedBefore] = [await rejectedEdge(), closedLines(), accepted.length];
    const ca = m.mesh.files.write('gateway-ca.pem', m.mesh.files.caPem);
    for (let i = 0; i < 5; i++) {
      const res = await runCommand('curl', [
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code} %{http_version}',
        '--http2',
        '--cacert',
        ca,
        `https://127.0.0.1:${m.port}/bad/echo/${i}`,
      ]);
      expect(res.stdout).toBe('200 2');
    }
    expect(accepted.length - acceptedBefore).toBe(5);
    await waitFor('the gateway to close the five connections', allClosed, 5_000);
    expect({ rejected: (await rejectedEdge()) - rejectedBefore, lines: closedLines() - linesBefore }).toEqual({
      rejected: 0,
      lines: 0,
    });
  });

  it('ok/node:http2 clients that destroy their socket right after the response → no rejected connection', async () => {
    const [rejectedBefore, linesBefore] = [await rejectedEdge(), closedLines()];
    for (let i = 0; i < 5; i++) {
      // TLS over a TCP socket of the test's own, so it can be reset (a TLSSocket's handle cannot).
      const tcp = netConnect(m.port, '127.0.0.1');
      tcp.on('error', () => undefined);
      const session = h2Connect(`https://127.0.0.1:${m.port}`, {
        createConnection: () =>
          tlsConnect({ socket: tcp, servername: 'localhost', ca: [m.mesh.files.caPem], ALPNProtocols: ['h2'] }),
      });
      session.on('error', () => undefined);
      const status = await new Promise<number>((resolve, reject) => {
        const req = session.request({ ':path': `/bad/echo/${i}` });
        req.on('response', (headers) => {
          req.resume();
          req.on('end', () => resolve(Number(headers[':status'])));
        });
        req.on('error', reject);
        req.end();
      });
      expect(status).toBe(200);
      // Gone without GOAWAY or TLS close_notify: a reset of the TCP connection (i odd) or a plain FIN (i even).
      if (i % 2 === 1) tcp.resetAndDestroy();
      else tcp.destroy();
    }
    await waitFor('the gateway to close the connections', allClosed, 5_000);
    expect({ rejected: (await rejectedEdge()) - rejectedBefore, lines: closedLines() - linesBefore }).toEqual({
      rejected: 0,
      lines: 0,
    });
  });
});
