// A slow body (RUDY): the sidecars stream bodies of any size, so what bounds an upload trickled byte by byte is the
// stream idle timeout, on both sides. At the outbound (HTTP/1.1 from the app) the cut used to be a 504 "peer did not
// answer in time", which sent an operator after a peer that was only waiting for the body: it is now a 408
// MESHAUTH_ERR_REQUEST_TIMEOUT, reason body_stalled. At the inbound (h2 from a peer) the stream was reset and
// counted as stream_idle_timeout; it gets the same 408 now (inbound-h2-body-stalled has the frame-level cases).
// Either way the app never sees a complete request and everyone else is served meanwhile.
import { connect as netConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logLines } from '../helpers/log-lines.js';
import { eventually, h2GetStatus, mtlsH2Session } from '../helpers/raw-app.js';
import {
  startApp,
  startTestSidecar,
  type TestApp,
  type TestSidecar,
  testConfig,
  viaProxy,
} from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';

describe('slow body (RUDY): an upload slower than the stream idle timeout is cut, others are served', () => {
  let ca: TestCa;
  let appB: TestApp;
  let a: TestSidecar;
  let b: TestSidecar;
  let peer: TestSvid;
  const logA = logLines('a');
  const logB = logLines('b');

  beforeAll(async () => {
    ca = await TestCa.create('example.org');
    peer = await ca.issue({ id: ca.idFor('/ns/shop/sa/peer') });
    appB = await startApp();
    // B resets an idle stream after max(streamIdleTimeout, appTimeout + 1 s) = 2 s; A's outbound gives up on an
    // idle stream after 0.5 s, so in the outbound case A's own limit is the one that acts.
    b = await startTestSidecar(ca, ca.idFor('/ns/shop/sa/b'), testConfig({ appPort: appB.port, appTimeout: '1s' }), {
      logger: logB.logger,
      inboundLimits: { streamIdleTimeoutMs: 500 },
    });
    a = await startTestSidecar(
      ca,
      ca.idFor('/ns/shop/sa/a'),
      testConfig({
        appPort: 1,
        outboundTimeout: '500ms',
        routes: { 'b.mesh': { address: `127.0.0.1:${b.sidecar.inboundPort}`, ids: [b.svid.svid.id.toString()] } },
      }),
      { logger: logA.logger },
    );
  });
  afterAll(async () => {
    await a?.sidecar.close(0);
    await b?.sidecar.close(0);
    await appB?.close();
  });

  it('fail/outbound: an HTTP/1.1 body from the app that stops arriving gets 408 body_stalled, the app of B never sees it, others are served', async () => {
    const slow = netConnect(a.sidecar.outboundPort, '127.0.0.1');
    let answer = '';
    let closed = false;
    slow.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
    });
    slow.on('error', () => undefined);
    slow.on('close', () => {
      closed = true;
    });
    try {
      await new Promise((resolve) => slow.once('connect', resolve));
      // One byte of a 1,000-byte body, then nothing: a trickle slower than any idle timeout.
      slow.write('POST http://b.mesh/slow HTTP/1.1\r\nHost: b.mesh\r\nContent-Length: 1000\r\n\r\na');
      const served: number[] = [];
      for (let i = 0; i < 200 && (i === 0 || !closed); i++) {
        served.push((await viaProxy(a.sidecar.outboundPort, 'http://b.mesh/other')).status);
      }
      expect(new Set(served), 'requests served while the slow body hangs').toEqual(new Set([200]));
      expect(await eventually(() => closed, 5_000), 'the slow request answered and its connection closed').toBe(true);
      expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 408 Request Timeout');
      expect(answer).toContain('"code":"MESHAUTH_ERR_REQUEST_TIMEOUT"');
    } finally {
      slow.destroy();
    }
    expect(appB.seen.map((r) => r.url)).not.toContain('/slow');
    const rejected = (await a.metrics.requestsRejected.get()).values.filter((v) => v.labels.direction === 'outbound');
    expect(rejected.map((v) => [v.labels.code, v.value])).toEqual([['MESHAUTH_ERR_REQUEST_TIMEOUT', 1]]);
    expect(logA.find({ code: 'MESHAUTH_ERR_REQUEST_TIMEOUT' })).toMatchObject([
      { direction: 'outbound', status: 408, reason: 'body_stalled', route: 'b.mesh' },
    ]);
    expect((await viaProxy(a.sidecar.outboundPort, 'http://b.mesh/after')).status, 'served after the cut').toBe(200);
  });

  it('fail/inbound: an h2 request body from a peer that stops arriving gets 408 body_stalled, others on the same session are served', async () => {
    const session = await mtlsH2Session(b.sidecar.inboundPort, peer, ca.bundlePem);
    const other = await mtlsH2Session(b.sidecar.inboundPort, peer, ca.bundlePem);
    try {
      const slow = session.request({ ':method': 'POST', ':path': '/slow-in', 'content-length': '1000' });
      let status = 0;
      slow.on('response', (headers) => {
        status = Number(headers[':status']);
      });
      slow.on('error', () => undefined);
      slow.resume();
      slow.write('a'); // then nothing
      const served: number[] = [];
      for (let i = 0; i < 500 && (i === 0 || !slow.closed); i++) {
        served.push(await h2GetStatus(session, { ':path': '/same-session' }), await h2GetStatus(other));
      }
      expect(new Set(served), 'requests served while the slow body hangs').toEqual(new Set([200]));
      expect(await eventually(() => slow.closed, 8_000), 'the slow stream answered').toBe(true);
      expect(status, 'a 408, not a reset').toBe(408);
      expect(await h2GetStatus(session), 'the session serves on after the cut').toBe(200);
    } finally {
      session.destroy();
      other.destroy();
    }
    expect(appB.seen.map((r) => r.url)).not.toContain('/slow-in');
    const rejected = (await b.metrics.requestsRejected.get()).values.filter((v) => v.labels.direction === 'inbound');
    expect(rejected.map((v) => [v.labels.code, v.value])).toEqual([['MESHAUTH_ERR_REQUEST_TIMEOUT', 1]]);
    expect(logB.find({ code: 'MESHAUTH_ERR_REQUEST_TIMEOUT' })).toMatchObject([
      { direction: 'inbound', status: 408, reason: 'body_stalled' },
    ]);
    expect(logB.find({ event: 'stream_idle_timeout' }), 'not counted as a reset').toEqual([]);
  });
});
