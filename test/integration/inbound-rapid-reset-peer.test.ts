// The rapid-reset rule against a well-behaved peer sidecar: between sidecars one HTTP/2 session per peer carries
// every caller's requests, and the outbound resets a stream whenever its caller gives up. During an app slowdown,
// callers with a deadline shorter than the app's latency produce the rapid-reset pattern. A first version closed
// the session with GOAWAY(ENHANCE_YOUR_CALM) and destroyed it: requests of other callers in flight were cut, and
// GETs the app had run were sent again (found by a review). The close is now graceful (GOAWAY NO_ERROR naming the
// last stream taken): what is in flight finishes, once, and later streams are refused and retried elsewhere.
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SidecarPair, startPair, viaProxy } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

/** A caller with a 100 ms deadline: sends through A's outbound, gives up (closes its connection) after 100 ms. */
function impatient(port: number): Promise<void> {
  return new Promise((resolve) => {
    const req = httpRequest({
      host: '127.0.0.1',
      port,
      path: 'http://b.mesh/slow',
      headers: { host: 'b.mesh' },
      agent: false,
    });
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    req.end();
    setTimeout(() => req.destroy(), 100);
  });
}

describe('inbound h2: the rapid-reset rule and a well-behaved peer sidecar', () => {
  let pair: SidecarPair;
  beforeAll(async () => {
    const ca = await TestCa.create();
    pair = await startPair(ca, {
      appHandler: (req, res) => {
        const delay = req.url === '/fast' ? 2_000 : 1_000; // an app slowdown: everything is slow
        setTimeout(() => res.end('ok'), delay);
      },
    });
  });
  afterAll(async () => {
    await pair?.close();
  });

  /** The patient request reached B's app (in flight there) before the impatient callers start. */
  const inFlightAtApp = (method: string) =>
    waitFor('the patient request at the app', () =>
      pair.appB.seen.some((r) => r.url === '/fast' && r.method === method),
    );

  it('ok/a POST in flight finishes, once, while other callers give up on theirs', async () => {
    const port = pair.a.sidecar.outboundPort;
    expect((await viaProxy(port, 'http://b.mesh/warm')).status).toBe(200);
    const patient = viaProxy(port, 'http://b.mesh/fast', { method: 'POST', body: 'pay 100' });
    await inFlightAtApp('POST');
    for (let batch = 0; batch < 6; batch++) {
      await Promise.all(Array.from({ length: 20 }, () => impatient(port)));
    }
    const result = await patient;
    const payments = pair.appB.seen.filter((r) => r.url === '/fast').length;
    expect(payments, 'a POST the app processed was not sent to it again').toBe(1);
    expect(result.status, "the patient caller's request").toBe(200);
  });

  it('ok/a GET in flight finishes and reaches the app once (the GOAWAY names the last stream taken)', async () => {
    const port = pair.a.sidecar.outboundPort;
    expect((await viaProxy(port, 'http://b.mesh/warm')).status).toBe(200);
    const patient = viaProxy(port, 'http://b.mesh/fast');
    await inFlightAtApp('GET');
    for (let batch = 0; batch < 6; batch++) {
      await Promise.all(Array.from({ length: 20 }, () => impatient(port)));
    }
    const result = await patient;
    const payments = pair.appB.seen.filter((r) => r.url === '/fast' && r.method === 'GET').length;
    expect(payments, 'a GET the app ran was not sent to it again').toBe(1);
    expect(result.status, "the patient caller's request").toBe(200);
  });
});
