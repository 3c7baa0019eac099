// A pod review the creator controls, with the webhook's memory as its Deployment gives it: a container with 6,000
// env entries (a ~100 KB AdmissionReview, far under the 4 MiB body cap, and sent to the webhook before the API server
// validates anything) made the JSON-Patch diff build a 36-million-cell table, and `meshauth webhook` died of heap
// exhaustion (found by an outside audit). The diff now aligns prefix and suffix in linear time.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, startWebhookCli, type WebhookCert, type WebhookCli } from '../helpers/webhook-tls.js';

function reviewWithEnv(n: number): string {
  const env = Array.from({ length: n }, (_, i) => ({ name: `E${i}` }));
  return review({ containers: [{ name: 'app', image: 'a:1', env }] });
}

function review(spec: unknown, annotations: Record<string, string> = {}): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'u-dos',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'shop',
      operation: 'CREATE',
      object: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'p', annotations },
        spec,
      },
    },
  });
}

describe('webhook: a large pod review', () => {
  let dir: string;
  let webhook: WebhookCli;
  let cert: WebhookCert;
  let port: number;
  const exited = () => webhook.exited();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'audit-webhook-'));
    webhook = await startWebhookCli(dir, ['--max-old-space-size=160']);
    ({ cert, port } = webhook);
  });
  afterAll(() => {
    webhook.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('ok/a ~100 KB pod review (6,000 env entries) is answered with a small patch and the webhook survives', async () => {
    const body = reviewWithEnv(6000);
    expect(body.length).toBeLessThan(120 * 1024); // tiny next to MAX_REVIEW_BYTES (4 MiB)
    const answer = await post(port, cert.caPem, '/mutate', body).catch((e: Error) => ({
      status: -1,
      body: { error: e.message },
    }));
    expect(exited(), `webhook died: ${webhook.stderr().slice(-300)}`).toBeUndefined();
    expect(answer.status).toBe(200);
    const response = (answer.body as { response?: { allowed?: boolean; patch?: string } }).response;
    expect(response?.allowed).toBe(true);
    // Five proxy variables appended, not 6,000 entries rewritten.
    expect(Buffer.from(response?.patch ?? '', 'base64').length).toBeLessThan(64 * 1024);
  });

  it('ok/a ~1 MB review of 500 identical unnamed init containers is answered with a patch; the webhook survives', async () => {
    // The list alignment once compared every pair of these items deeply (~20 s here, past the manifest's
    // timeoutSeconds). The work is counted in test/unit/k8s/inject-json-patch.test.ts; here the built webhook answers.
    const item = { image: 'x', args: Array.from({ length: 600 }, () => ({})) };
    const initContainers = [...Array.from({ length: 499 }, () => item), { name: 'meshauth-proxy', image: 'y' }];
    const body = review(
      { initContainers, containers: [{ name: 'app', image: 'a:1' }] },
      { 'meshauth.dev/status': '{}' },
    );
    expect(body.length).toBeGreaterThan(800 * 1024);
    const answer = await post(port, cert.caPem, '/mutate', body);
    expect(answer.status).toBe(200);
    expect((answer.body as { response?: { patch?: string } }).response?.patch).toBeDefined();
    expect(exited()).toBeUndefined();
  }, 60_000);

  it('ok/a ~2 MB review whose status annotation lists 80,000 env names is answered; the webhook survives', async () => {
    // uninject once looked each env entry up in the annotation's list (~40 s here); the work is counted in
    // test/unit/k8s/inject-object.test.ts. The API server's 256 KiB annotation limit applies only after the webhook.
    const names = Array.from({ length: 80_000 }, (_, i) => `E${i}`);
    const status = JSON.stringify({ env: { app: names.map((n) => `S${n}`) } });
    const env = names.map((name) => ({ name }));
    const body = review({ containers: [{ name: 'app', image: 'a:1', env }] }, { 'meshauth.dev/status': status });
    expect(body.length).toBeGreaterThan(2 * 1024 * 1024);
    const answer = await post(port, cert.caPem, '/mutate', body);
    expect(answer.status).toBe(200);
    expect(exited()).toBeUndefined();
  }, 90_000);
});
