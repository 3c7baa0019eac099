// The outbound when the peer answers before the app's upload has ended (B's policy refuses it, or app B answers a
// big body at once), on real sockets (HTTP/2 and HTTP/1.1 between the sidecars): the answer says `connection: close`, the rest of the body is read and dropped,
// and the connection is closed cleanly behind the answer. Found in review: the outbound stopped reading the app's
// connection after such an answer, kept it alive, and never answered the next request on it; the socket was
// destroyed at the keep-alive timeout (65 s), a reset the client could not tell from a lost request.
import { connect as netConnect } from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type PairOptions, startPair } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

/** Past the HTTP/2 stream window: the peer answers while the sender still waits for window to send the rest. */
const BODY_BYTES = 512 * 1024;

const denyEarly: PairOptions['hooksB'] = {
  authorize: (req) =>
    req.target.startsWith('/deny') ? { allow: false, reason: 'test_deny' } : { allow: true, reason: 'ok' },
};

describe('outbound: an answer before the upload ended', () => {
  let ca: TestCa;
  const closers: (() => Promise<void>)[] = [];
  beforeAll(async () => {
    ca = await TestCa.create();
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  /** A POST of BODY_BYTES, then on the same connection a GET; what came back until the outbound closed it. */
  async function postThenGet(port: number, path: string) {
    const socket = netConnect(port, '127.0.0.1');
    let text = '';
    let ended = false;
    let closed = false;
    let reset = false;
    socket.on('error', () => {
      reset = true;
    });
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
    });
    socket.on('end', () => {
      ended = true;
    });
    socket.on('close', () => {
      closed = true;
    });
    socket.on('connect', () => {
      socket.write(`POST http://b.mesh${path} HTTP/1.1\r\nHost: b.mesh\r\nContent-Length: ${BODY_BYTES}\r\n\r\n`);
      socket.write(Buffer.alloc(BODY_BYTES, 0x61));
      socket.write('GET http://b.mesh/second HTTP/1.1\r\nHost: b.mesh\r\nconnection: close\r\n\r\n');
    });
    await waitFor('the outbound closes the connection', () => closed, 15_000);
    return { text, ended, reset, heads: text.match(/HTTP\/1\.1 [^\r]*/g) ?? [] };
  }

  const cases: [string, PairOptions][] = [
    ['fail/B’s policy refuses (403) before reading the body', { hooksB: denyEarly }],
    // The outbound's own answers too (found in review of the first fix: they said keep-alive, then the connection
    // closed behind them).
    ['fail/the peer shows another identity (502)', { routeIds: ['spiffe://example.org/ns/shop/sa/other'] }],
    [
      'fail/the outbound hook fails',
      {
        hooksA: {
          onOutboundRequest: async () => {
            throw new Error('hook failed');
          },
        } as PairOptions['hooksA'],
      },
    ],
    [
      'fail/B’s policy refuses (403) before reading the body, A talking HTTP/1.1 to B',
      { hooksB: denyEarly, http1: true },
    ],
  ];

  it.each(cases)('%s: the answer, connection: close, a clean close', async (_name, options) => {
    const pair = await startPair(ca, options);
    closers.push(() => pair.close());
    const got = await postThenGet(pair.a.sidecar.outboundPort as number, '/deny');
    expect(got.heads).toHaveLength(1);
    expect(got.text.toLowerCase()).toContain('\r\nconnection: close\r\n');
    expect(got.ended).toBe(true);
    expect(got.reset).toBe(false);
  });

  it('ok/a body sent whole before the answer keeps the connection for the next request', async () => {
    // The harness's app reads each body whole before it answers.
    const pair = await startPair(ca, { hooksB: denyEarly });
    closers.push(() => pair.close());
    const got = await postThenGet(pair.a.sidecar.outboundPort as number, '/whole');
    expect(got.heads).toEqual(['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK']);
  });
});
