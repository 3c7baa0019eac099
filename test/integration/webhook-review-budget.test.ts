// The webhook bounded each AdmissionReview body (4 MiB) but not the bodies of all requests in flight together: 30
// concurrent 2.7 MB reviews took `meshauth webhook` to a peak RSS of 424 MB where its Deployment allows 192 MiB, and
// the port is reachable from any pod (found by an outside tester). The bytes in flight now have a budget
// (REVIEW_BYTES_IN_FLIGHT, three reviews at the cap): a review that would pass it is refused with 503, Retry-After
// and MESHAUTH_ERR_WEBHOOK_OVERLOADED before its body is read (by Content-Length, or as soon as a chunked body
// crosses it), counted as result="error", in a rate-limited log line; the webhook serves on. The test counts
// refusals and bytes, not memory or time.
import { mkdtempSync, rmSync } from 'node:fs';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { podCreateReview } from '../helpers/admission-review.js';
import { waitFor } from '../helpers/wait.js';
import { fetchText, post, startWebhookCli, type WebhookCert, type WebhookCli } from '../helpers/webhook-tls.js';

const MIB = 1024 * 1024;
const BUDGET = 12 * MIB; // REVIEW_BYTES_IN_FLIGHT
const LARGE = 4_000_000; // under the 4 MiB cap; three fit the budget, a fourth does not
const HOLDERS = 8;

/** A pod review padded with trailing whitespace (valid JSON) to exactly `size` bytes. */
function review(size: number, uid = 'u-budget'): Buffer {
  const json = JSON.stringify(
    podCreateReview(
      { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'app' }] } },
      uid,
    ),
  );
  return Buffer.concat([Buffer.from(json), Buffer.alloc(size - json.length, ' ')]);
}

interface Pending {
  readonly req: ClientRequest;
  response?: { status: number; retryAfter: string | undefined; body: string };
  error?: string;
}

/** Sends the head of a POST /mutate (Content-Length `length`, or chunked when undefined) and keeps it open. */
function open(port: number, cert: WebhookCert, length: number | undefined): Pending {
  const headers: Record<string, string | number> = { 'content-type': 'application/json' };
  if (length !== undefined) headers['content-length'] = length;
  const req = request({
    host: '127.0.0.1',
    port,
    path: '/mutate',
    method: 'POST',
    ca: cert.caPem,
    servername: 'meshauth-webhook.meshauth.svc',
    headers,
    agent: false,
  });
  const pending: Pending = { req };
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

function metric(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

describe('webhook: review bodies in flight have a budget', () => {
  let dir: string;
  let webhook: WebhookCli;
  let cert: WebhookCert;
  let port: number;
  const exited = () => webhook.exited();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshauth-webhook-budget-'));
    webhook = await startWebhookCli(dir);
    ({ cert, port } = webhook);
  });
  afterAll(() => {
    webhook.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('fail/reviews past the budget are refused with 503 before their bodies; the admitted ones are answered', async () => {
    expect(3 * LARGE).toBeLessThanOrEqual(BUDGET);
    expect(4 * LARGE).toBeGreaterThan(BUDGET);
    const body = review(LARGE);
    // Eight heads declaring 4 MB each, no body byte yet: three fit, the other five are refused on their head.
    const holders = Array.from({ length: HOLDERS }, () => open(port, cert, LARGE));
    const refused = () => holders.filter((h) => h.response !== undefined);
    await waitFor('five refusals', () => refused().length === HOLDERS - 3, 8_000);
    for (const h of refused()) {
      expect(h.response).toMatchObject({ status: 503, retryAfter: '1' });
      expect(JSON.parse(h.response?.body ?? '{}')).toEqual({
        code: 'MESHAUTH_ERR_WEBHOOK_OVERLOADED',
        message: 'webhook busy, retry later',
      });
    }

    // A chunked body (no Content-Length) is refused as soon as it crosses what the three leave free.
    const chunked = open(port, cert, undefined);
    chunked.req.write(review(BUDGET - 3 * LARGE + 64 * 1024));
    await waitFor('the chunked refusal', () => chunked.response ?? chunked.error, 8_000);
    expect(chunked.response).toMatchObject({ status: 503, retryAfter: '1' });

    // The three admitted send their bodies and are answered; their bytes go back to the budget.
    const admitted = holders.filter((h) => h.response === undefined);
    expect(admitted).toHaveLength(3);
    for (const h of admitted) h.req.end(body);
    await waitFor('three answers', () => admitted.every((h) => h.response ?? h.error), 30_000);
    for (const h of admitted) expect(h.response?.status).toBe(200);

    const again = await post(port, cert.caPem, '/mutate', review(LARGE).toString());
    expect(again.status).toBe(200);
    expect(exited()).toBeUndefined();

    const metrics = (await fetchText(port, cert.caPem, '/metrics')).text;
    expect(metric(metrics, 'meshauth_webhook_reviews_total{result="error"}')).toBe(HOLDERS - 3 + 1);
    const lines = webhook
      .stderr()
      .split('\n')
      .filter((l) => l.includes('"admission_review_refused"') && !l.includes('"suppressed"'));
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(lines[0] as string)).toMatchObject({
      level: 'warn',
      code: 'MESHAUTH_ERR_WEBHOOK_OVERLOADED',
      reason: 'overloaded',
      budget: BUDGET,
    });
    const suppressed = metric(metrics, 'meshauth_log_lines_suppressed_total{event="admission_review_refused"}');
    expect(lines.length + suppressed).toBe(HOLDERS - 3 + 1);
  }, 60_000);

  it('ok/thirty concurrent 3 MB reviews: each answered 200 or refused, the webhook survives and serves on', async () => {
    const before = metric(
      (await fetchText(port, cert.caPem, '/metrics')).text,
      'meshauth_webhook_reviews_total{result="error"}',
    );
    const body = review(3 * MIB).toString();
    const answers = await Promise.all(
      Array.from({ length: 30 }, () =>
        post(port, cert.caPem, '/mutate', body).then(
          (a) => a.status,
          // A refused client may see its connection closed while it still writes its body.
          () => 'closed',
        ),
      ),
    );
    for (const a of answers) expect([200, 503, 'closed']).toContain(a);
    expect(exited(), `webhook died: ${webhook.stderr().slice(-300)}`).toBeUndefined();
    const after = metric(
      (await fetchText(port, cert.caPem, '/metrics')).text,
      'meshauth_webhook_reviews_total{result="error"}',
    );
    // Every review not answered 200 was refused and counted.
    expect(after - before).toBe(answers.filter((a) => a !== 200).length);
    expect((await post(port, cert.caPem, '/mutate', review(1024).toString())).status).toBe(200);
  }, 60_000);
});
