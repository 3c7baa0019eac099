// The webhook bounded each AdmissionReview body (4 MiB) but not the bodies of all requests in flight together: 30
// concurrent 2.7 MB reviews took `meshauth webhook` to a peak RSS of 424 MB where its Deployment allows 192 MiB, and
// the port is reachable from any pod (found by an outside tester). The bytes in flight now have a budget
// (REVIEW_BYTES_IN_FLIGHT, three reviews at the cap, half of it per client address): a review that would pass it is
// refused with 503 as its body arrives. This file runs the built CLI under that load and checks that it survives and
// counts every refusal; what holds the budget, and what a refusal looks like, is webhook-review-budget-hold.test.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { podCreateReview } from '../helpers/admission-review.js';
import {
  exposedValue,
  fetchText,
  post,
  startWebhookCli,
  type WebhookCert,
  type WebhookCli,
} from '../helpers/webhook-tls.js';

const MIB = 1024 * 1024;

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

  it('ok/thirty concurrent 3 MB reviews: each answered 200 or refused, the webhook survives and serves on', async () => {
    const before = exposedValue(
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
    const after = exposedValue(
      (await fetchText(port, cert.caPem, '/metrics')).text,
      'meshauth_webhook_reviews_total{result="error"}',
    );
    // Every review not answered 200 was refused and counted.
    expect(after - before).toBe(answers.filter((a) => a !== 200).length);
    expect((await post(port, cert.caPem, '/mutate', review(1024).toString())).status).toBe(200);
  }, 60_000);
});
