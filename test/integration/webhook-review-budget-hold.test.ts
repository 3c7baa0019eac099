// Who can hold the webhook's review budget, and for how long. Before: a declared Content-Length was reserved whole
// when the head arrived, so three heads declaring the 4 MiB cap and sending no body held the whole 12 MiB budget, and
// Node checked the 10 s request timeout only every 30 s: any pod could keep every review of the API server at 503
// (with failurePolicy Ignore, pods admitted without their sidecar) for 30-40 s per three connections. Now bytes are
// reserved as they arrive, one client address holds at most half of the budget, and a request that stops sending
// ends at its 10 s timeout. The tests count refusals and bytes; the only wait on time is bounded by the timeout.
import { mkdtempSync, rmSync } from 'node:fs';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it, type OnTestFinishedHandler } from 'vitest';
import { resolveInjectConfig } from '../../src/k8s/index.js';
import { REVIEW_BYTES_IN_FLIGHT, WebhookServer } from '../../src/k8s/webhook-server.js';
import { Metrics } from '../../src/telemetry/index.js';
import { podCreateReview } from '../helpers/admission-review.js';
import { logLines } from '../helpers/log-lines.js';
import { waitFor } from '../helpers/wait.js';
import { exposedValue, type WebhookCert, writeWebhookCert } from '../helpers/webhook-tls.js';

const MIB = 1024 * 1024;
const CAP = 4 * MIB; // MAX_REVIEW_BYTES
const SHARE = REVIEW_BYTES_IN_FLIGHT / 2; // 6 MiB: what one client address may hold
const STALLED = 3 * MIB; // two stalled bodies of this size fill one address's share

/** A pod review padded with trailing whitespace (valid JSON) to exactly `size` bytes. */
function review(size: number): Buffer {
  const json = JSON.stringify(
    podCreateReview({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p' },
      spec: { containers: [{ name: 'app' }] },
    }),
  );
  return Buffer.concat([Buffer.from(json), Buffer.alloc(Math.max(0, size - json.length), ' ')]);
}

interface Pending {
  readonly req: ClientRequest;
  /** The server ran the handler (it answered `Expect: 100-continue`). */
  continued: boolean;
  response?: { status: number; retryAfter: string | undefined; body: string };
  error?: string;
}

/** Sends the head of a POST /mutate from `from` (Content-Length `length`, or chunked when undefined); keeps it open. */
function open(port: number, cert: WebhookCert, length: number | undefined, from = '127.0.0.1'): Pending {
  const headers: Record<string, string | number> = { 'content-type': 'application/json', expect: '100-continue' };
  if (length !== undefined) headers['content-length'] = length;
  const req = request({
    host: '127.0.0.1',
    localAddress: from,
    port,
    path: '/mutate',
    method: 'POST',
    ca: cert.caPem,
    servername: 'meshauth-webhook.meshauth.svc',
    headers,
    agent: false,
  });
  const pending: Pending = { req, continued: false };
  req.once('continue', () => {
    pending.continued = true;
  });
  req.once('response', (res: IncomingMessage) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.once('end', () => {
      const retryAfter = res.headers['retry-after'];
      pending.response = {
        status: res.statusCode ?? 0,
        retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined,
        body: Buffer.concat(chunks).toString('utf8'),
      };
    });
  });
  req.once('error', (error) => {
    pending.error = error.message;
  });
  req.flushHeaders();
  return pending;
}

/** A whole review from `from`: its status, or 'closed' when the server closed the connection mid-body. */
async function send(port: number, cert: WebhookCert, body: Buffer, from = '127.0.0.1'): Promise<number | 'closed'> {
  const pending = open(port, cert, body.length, from);
  pending.req.end(body);
  await waitFor('an answer', () => pending.response ?? pending.error, 10_000);
  return pending.response?.status ?? 'closed';
}

/** Opens a request declaring the cap and sends `bytes` of its body, no more. */
async function stall(port: number, cert: WebhookCert, bytes: number, from: string): Promise<Pending> {
  const pending = open(port, cert, CAP, from);
  await waitFor('100 Continue', () => pending.continued || pending.error, 5_000);
  await new Promise<void>((resolve) => pending.req.write(review(bytes), () => resolve()));
  return pending;
}

// Each case has a webhook of its own (its own budget, metrics and log), so the cases run side by side: the last one
// waits out the 10 s request timeout while the others run. Teardown goes through each case's own onTestFinished.
describe.concurrent('webhook: what holds the review budget', () => {
  let dir: string;
  let cert: WebhookCert;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshauth-webhook-hold-'));
    cert = writeWebhookCert(dir);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  type Finished = (fn: OnTestFinishedHandler) => void;

  /** A fresh webhook (fresh budget, metrics and log) closed after the test, after the requests it left open. */
  async function webhook(
    onTestFinished: Finished,
  ): Promise<{ port: number; metrics: Metrics; log: ReturnType<typeof logLines> }> {
    const metrics = new Metrics();
    const log = logLines('webhook');
    const server = new WebhookServer({
      host: '127.0.0.1',
      port: 0,
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      config: resolveInjectConfig({ trustDomain: 'example.org' }),
      metrics,
      logger: log.logger,
    });
    const port = await server.listen();
    onTestFinished(() => server.close());
    return { port, metrics, log };
  }

  function teardown(onTestFinished: Finished, requests: Pending[]): void {
    onTestFinished(() => {
      for (const r of requests) r.req.destroy();
    });
  }

  it('ok/heads declaring the 4 MiB cap with no body hold none of the budget: the next review is answered', async ({
    expect,
    onTestFinished,
  }) => {
    const { port, metrics } = await webhook(onTestFinished);
    const heads = [0, 1, 2].map(() => open(port, cert, CAP));
    teardown(onTestFinished, heads);
    // The server answers 100 Continue as it hands the request to the webhook: each head has been seen.
    await waitFor('three heads handled', () => heads.every((h) => h.continued), 5_000);
    expect(3 * CAP).toBe(REVIEW_BYTES_IN_FLIGHT);

    expect(await send(port, cert, review(1024))).toBe(200);
    expect(await send(port, cert, review(CAP - 1024), '127.0.0.2')).toBe(200);
    expect(heads.map((h) => h.response)).toEqual([undefined, undefined, undefined]);
    expect(exposedValue(await metrics.exposition(), 'meshauth_webhook_reviews_total{result="error"}')).toBe(0);
  });

  it('fail/one address holds at most half the budget: its next review gets 503, another address is served', async ({
    expect,
    onTestFinished,
  }) => {
    const { port, log } = await webhook(onTestFinished);
    expect(2 * STALLED).toBe(SHARE);
    const stalled = [await stall(port, cert, STALLED, '127.0.0.1'), await stall(port, cert, STALLED, '127.0.0.1')];
    teardown(onTestFinished, stalled);

    // Once the server has read both bodies the address's share is full: a review of 1 KiB from it is refused.
    await waitFor('a refusal past the share', async () => (await send(port, cert, review(1024))) === 503, 10_000);
    expect(log.find({ code: 'MESHAUTH_ERR_WEBHOOK_OVERLOADED' })[0]).toMatchObject({
      level: 'warn',
      event: 'admission_review_refused',
      reason: 'overloaded',
      limit: 'source_share',
      remote: '127.0.0.1',
      remoteInFlight: SHARE,
      remoteShare: SHARE,
      inFlight: SHARE,
      budget: REVIEW_BYTES_IN_FLIGHT,
    });
    // Another address still has the other half.
    expect(await send(port, cert, review(STALLED), '127.0.0.2')).toBe(200);
  });

  it('fail/addresses that fill the whole budget between them: every other review gets 503, counted and logged', async ({
    expect,
    onTestFinished,
  }) => {
    const { port, metrics, log } = await webhook(onTestFinished);
    const stalled: Pending[] = [];
    teardown(onTestFinished, stalled);
    for (const from of ['127.0.0.1', '127.0.0.1', '127.0.0.2', '127.0.0.2']) {
      stalled.push(await stall(port, cert, STALLED, from));
    }
    const fromThird = async () => (await send(port, cert, review(1024), '127.0.0.3')) === 503;
    await waitFor('a refusal past the budget', fromThird, 10_000);
    expect(log.find({ code: 'MESHAUTH_ERR_WEBHOOK_OVERLOADED' })[0]).toMatchObject({
      limit: 'budget',
      remote: '127.0.0.3',
      remoteInFlight: 0,
      inFlight: REVIEW_BYTES_IN_FLIGHT,
    });

    // A chunked body is counted as it arrives, the same way.
    const refused = open(port, cert, undefined, '127.0.0.4');
    refused.req.end(review(1024));
    await waitFor('the answer', () => refused.response ?? refused.error, 10_000);
    expect(refused.response).toMatchObject({ status: 503, retryAfter: '1' });
    expect(JSON.parse(refused.response?.body ?? '{}')).toEqual({
      code: 'MESHAUTH_ERR_WEBHOOK_OVERLOADED',
      message: 'webhook busy, retry later',
    });
    // Each refusal counted; one log line per 10 s window, the rest counted as suppressed.
    const text = await metrics.exposition();
    const refusals = exposedValue(text, 'meshauth_webhook_reviews_total{result="error"}');
    expect(refusals).toBeGreaterThanOrEqual(2);
    const suppressed = exposedValue(text, 'meshauth_log_lines_suppressed_total{event="admission_review_refused"}');
    expect(log.find({ event: 'admission_review_refused' })).toHaveLength(1);
    expect(1 + suppressed).toBe(refusals);
  });

  it('fail/requests that stop sending end at the 10 s request timeout, and their bytes go back to the budget', async ({
    expect,
    onTestFinished,
  }) => {
    const { port } = await webhook(onTestFinished);
    const stalled = [await stall(port, cert, STALLED, '127.0.0.1'), await stall(port, cert, STALLED, '127.0.0.1')];
    teardown(onTestFinished, stalled);
    await waitFor('the share full', async () => (await send(port, cert, review(1024))) === 503, 10_000);

    // Node checked the timeout every 30 s, so such requests lived up to 40 s; now at most about 11.
    await waitFor('both stalled requests ended', () => stalled.every((s) => s.response ?? s.error), 20_000, 100);
    for (const s of stalled) expect(s.response?.status ?? 'closed').not.toBe(200);
    expect(await send(port, cert, review(STALLED))).toBe(200);
  }, 30_000);
});
