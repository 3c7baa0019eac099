// A browser that leaves while the gateway's request to an HTTP/1.1 peer waits for its answer: the peer's connection
// for that request is ended, and no other connection is opened in its place (one that would never carry a request,
// which the peer times out).
import type { ServerResponse } from 'node:http';
import { connect } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayWithHttp1Peer, startGatewayWithHttp1Peer } from '../helpers/gateway-mesh.js';
import { eventually, until } from '../helpers/wait.js';

describe('gateway → HTTP/1.1 peer: the browser leaves before the answer', () => {
  let started: GatewayWithHttp1Peer;
  const held: ServerResponse[] = [];
  const peerSockets: TLSSocket[] = [];

  beforeAll(async () => {
    started = await startGatewayWithHttp1Peer((_req, res) => {
      held.push(res);
    });
    started.peer.on('secureConnection', (socket: TLSSocket) => peerSockets.push(socket));
  });
  afterAll(async () => {
    for (const res of held) res.destroy();
    await started?.close();
  });

  it('fail/the aborted request ends its peer connection and none is opened in its place', async () => {
    const { mesh } = started;
    const session = connect(mesh.origin, { ca: mesh.files.caPem });
    session.on('error', () => undefined);
    const stream = session.request({ ':path': '/legacy/hold' });
    stream.on('error', () => undefined);
    await until('the request reached the peer', () => held.length === 1);
    const opened = peerSockets.length;

    stream.close(); // RST_STREAM(CANCEL): the browser left
    await until('the connection that carried it closed', () => peerSockets[opened - 1]?.destroyed === true);
    // A replacement shows at once (a TLS handshake from the gateway): none within a second.
    expect(await eventually(() => peerSockets.length > opened, 1_000)).toBe(false);
    session.close();
  });
});
