// Found by a load test whose callers pipelined requests through A's outbound (`outbound.http2: false`): responses
// were cut with "peer_response_truncated" and the cause `assert(currentParser === null)` from undici. Node 20's
// node:http emits 'drain' on the response being sent from inside a write to a response queued behind it (pipelined);
// that write is ForwardHandler.onData of the second exchange, inside its undici parser's callback, and resuming the
// first exchange's parser from there runs a second parser inside the first: undici's assertion destroys a connection,
// and here the first answer then never finished. (Node 24 does not emit that 'drain': the test passes there either way.)
import type { ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricValue } from '../helpers/fault-harness.js';
import { type SidecarPair, startPair } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';
import { until, waitFor } from '../helpers/wait.js';

const BIG = 32 * 1024 * 1024; // more than loopback socket buffers hold: the caller that does not read stalls it
const CHUNK = Buffer.alloc(64 * 1024, 'x');

describe('HTTP/1.1 to a peer: pipelined requests whose first answer waits for the caller', () => {
  let pair: SidecarPair;
  /** When app B's big answer last began to wait for 'drain' (undefined: writing). */
  let waitingSince: number | undefined;
  let small: ServerResponse | undefined;

  beforeAll(async () => {
    const ca = await TestCa.create();
    pair = await startPair(ca, {
      http1: true,
      appHandler: (req, res) => {
        if (req.url === '/small') {
          small = res;
          return;
        }
        res.writeHead(200, { 'content-length': String(BIG) });
        let sent = 0;
        const pump = (): void => {
          while (sent < BIG) {
            sent += CHUNK.length;
            if (!res.write(CHUNK)) {
              waitingSince = Date.now();
              res.once('drain', () => {
                waitingSince = undefined;
                pump();
              });
              return;
            }
          }
          res.end();
        };
        pump();
      },
    });
  });
  afterAll(async () => {
    await pair?.close();
  });

  it('fail/both answers reach the caller whole once it reads, none is cut', async () => {
    const caller = connect(pair.a.sidecar.outboundPort, '127.0.0.1');
    caller.on('error', () => undefined);
    caller.pause();
    caller.write(
      'GET http://b.mesh/big HTTP/1.1\r\nhost: b.mesh\r\n\r\n' +
        'GET http://b.mesh/small HTTP/1.1\r\nhost: b.mesh\r\nconnection: close\r\n\r\n',
    );
    // The whole path is stalled by the caller that does not read: app B's writes wait for 'drain'.
    // Stalled: app B's write has waited for 'drain' 300 ms without interruption (the buffers on the way are full).
    await until(
      'app B has both requests and the big answer is stalled',
      () => small !== undefined && waitingSince !== undefined && Date.now() - waitingSince > 300,
      10_000,
    );
    (small as ServerResponse).writeHead(200, { 'content-length': '2' });
    (small as ServerResponse).end('ok');
    // The small answer reaches A and is queued behind the big one (node:http sends pipelined answers in order).
    await waitFor(
      'A forwarded the small answer',
      async () => (await metricValue(pair.a, 'meshauth_requests_total', 'code="200"')) === 2,
      10_000,
    );
    let received = 0;
    let tail = '';
    caller.on('data', (chunk: Buffer) => {
      received += chunk.length;
      tail = (tail + chunk.toString('latin1')).slice(-64);
    });
    let closed = false;
    caller.once('close', () => {
      closed = true;
    });
    caller.resume();
    await until('A closed the connection after the second answer', () => closed, 15_000);
    expect(tail.endsWith('\r\n\r\nok')).toBe(true);
    expect(received).toBeGreaterThan(BIG);
    expect(await metricValue(pair.a, 'meshauth_streams_reset_total', 'peer_response_truncated')).toBe(0);
  });
});
