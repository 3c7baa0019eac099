// A request pipelined behind an answer that closes the connection is never run. node:http parses every request on a
// kept-alive connection and emits it, also behind an answer that says `Connection: close` (here the 431 of a head
// with too many fields), and queues its answer behind that one; the connection then closes first. Before, the
// outbound and the inbound forwarded such a request to its app and the gateway to its service: it ran while its
// caller never got an answer, and a caller that sends it again on a new connection would have it run twice. The
// outbound's and the inbound's cases are in identity-headers-long-head.test.ts; node:http's side of it is pinned in
// inbound-node-internals.test.ts.
import { connect as tlsConnect } from 'node:tls';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayWithHttp1Peer, startGatewayWithHttp1Peer } from '../helpers/gateway-mesh.js';

/** `count` header lines `a0: 1` …: within the byte limit, past the gateway's field limit (980). */
const padLines = (count: number): string => Array.from({ length: count }, (_, i) => `a${i}: 1\r\n`).join('');

describe('the gateway, a request pipelined behind a 431 header_count', () => {
  let started: GatewayWithHttp1Peer | undefined;
  const seen: string[] = [];
  beforeAll(async () => {
    started = await startGatewayWithHttp1Peer((req, res) => {
      seen.push(req.url ?? '');
      res.end('ok');
    });
  });
  afterAll(async () => {
    await started?.close();
  });

  it('fail/the service never gets it; the caller gets one answer, then the close', async () => {
    const mesh = (started as GatewayWithHttp1Peer).mesh;
    // A request on a connection of its own first: the gateway's connection to the service is open and kept.
    const agent = new Agent({ connect: { ca: mesh.files.caPem } });
    try {
      expect((await request(`${mesh.origin}/legacy/warm`, { dispatcher: agent })).statusCode).toBe(200);
    } finally {
      await agent.close();
    }
    const reply = await new Promise<string>((resolve, reject) => {
      let text = '';
      const socket = tlsConnect({
        port: Number(new URL(mesh.origin).port),
        host: '127.0.0.1',
        ca: [mesh.files.caPem],
        servername: 'localhost',
        ALPNProtocols: ['http/1.1'],
      });
      socket.setTimeout(5_000, () => socket.destroy());
      socket.once('secureConnect', () =>
        socket.write(
          `GET /legacy/x HTTP/1.1\r\nHost: 127.0.0.1\r\n${padLines(985)}\r\n` +
            'GET /legacy/second HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n',
        ),
      );
      socket.on('data', (d: Buffer) => {
        text += d.toString('latin1');
      });
      socket.on('close', () => resolve(text));
      socket.on('error', (e) => (text === '' ? reject(e) : resolve(text)));
    });
    expect(reply.match(/HTTP\/1\.1 \d+/g)).toEqual(['HTTP/1.1 431']);
    // What reached the service by now: a forwarded /legacy/second would have been written before the close.
    const warmAgain = new Agent({ connect: { ca: mesh.files.caPem } });
    try {
      expect((await request(`${mesh.origin}/legacy/after`, { dispatcher: warmAgain })).statusCode).toBe(200);
    } finally {
      await warmAgain.close();
    }
    expect(seen).toEqual(['/legacy/warm', '/legacy/after']);
  });
});
