// The webhook on real HTTPS (127.0.0.1) with a pod whose config.meshauth.dev key is no setting (a typo): the pod is
// admitted and injected (never denied for it, failClosed or not), the AdmissionReview answer carries a warning kubectl
// prints, the review's one log line is a warn with the code and the key, and the review is counted in
// meshauth_webhook_annotation_warnings_total (read from a real scrape of /metrics, which promtool accepts).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveInjectConfig } from '../../src/k8s/index.js';
import { WebhookServer } from '../../src/k8s/webhook-server.js';
import { Metrics } from '../../src/telemetry/index.js';
import { podCreateReview } from '../helpers/admission-review.js';
import { logLines } from '../helpers/log-lines.js';
import { available, runCommand } from '../helpers/sidecar-harness.js';
import { fetchText, makeWebhookCert, post, type WebhookCert } from '../helpers/webhook-tls.js';

const WARNINGS_METRIC = 'meshauth_webhook_annotation_warnings_total';

function review(uid: string, annotations: Record<string, string>): string {
  return JSON.stringify(
    podCreateReview(
      {
        metadata: { name: `orders-${uid}`, namespace: 'shop', annotations },
        spec: { containers: [{ name: 'app', image: 'orders:1', ports: [{ containerPort: 3000 }] }] },
      },
      uid,
    ),
  );
}

interface ReviewAnswer {
  allowed: boolean;
  patch?: string;
  warnings?: string[];
}

describe('webhook: unknown config.meshauth.dev annotation', () => {
  let dir: string;
  let cert: WebhookCert;
  let server: WebhookServer;
  const log = logLines('webhook');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshauth-webhook-annotation-'));
    cert = makeWebhookCert(dir, 'serving');
    writeFileSync(join(dir, 'tls.crt'), cert.certPem);
    writeFileSync(join(dir, 'tls.key'), cert.keyPem);
    server = new WebhookServer({
      host: '127.0.0.1',
      port: 0,
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      // failClosed refuses what the webhook cannot handle; a typo is not that, and must not deny the pod.
      config: resolveInjectConfig({ trustDomain: 'example.org', failClosed: true }),
      metrics: new Metrics(),
      logger: log.logger,
    });
    await server.listen();
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The counter's value in a scrape of the webhook's own /metrics (undefined: not exposed). */
  async function scrapedWarnings(): Promise<number | undefined> {
    const scrape = await fetchText(server.port, cert.caPem, '/metrics');
    expect(scrape.status).toBe(200);
    const value = new RegExp(`^${WARNINGS_METRIC} (\\d+)$`, 'm').exec(scrape.text)?.[1];
    return value === undefined ? undefined : Number(value);
  }

  it('ok/admitted with the sidecar, a warning in the answer, one warn log line with the code', async () => {
    const answer = await post(
      server.port,
      cert.caPem,
      '/mutate',
      review('u-typo', { 'config.meshauth.dev/appport': '8080' }),
    );
    expect(answer.status).toBe(200);
    const response = answer.body.response as ReviewAnswer;
    expect(response.allowed).toBe(true);
    expect(response.patch).toBeDefined();
    expect(response.warnings).toHaveLength(1);
    expect(response.warnings?.[0]).toMatch(
      /^Pod shop\/orders-u-typo: annotation config\.meshauth\.dev\/appport is not a meshauth setting \(did you mean config\.meshauth\.dev\/app-port\?\); ignored$/,
    );
    const lines = log.lines.filter((line) => line.object === 'Pod shop/orders-u-typo');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 'warn',
      code: 'MESHAUTH_ERR_MANIFEST_ANNOTATION_UNKNOWN',
      annotations: ['config.meshauth.dev/appport'],
      result: 'injected',
    });
  });

  it('ok/known settings only: no warning, the usual info line without a code', async () => {
    const answer = await post(
      server.port,
      cert.caPem,
      '/mutate',
      review('u-ok', { 'config.meshauth.dev/app-port': '3000' }),
    );
    const response = answer.body.response as ReviewAnswer;
    expect(response).toMatchObject({ allowed: true });
    expect(response.warnings).toBeUndefined();
    const lines = log.lines.filter((line) => line.object === 'Pod shop/orders-u-ok');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'info', result: 'injected' });
    expect(lines[0]?.code).toBeUndefined();
  });

  it('ok/each review with unknown keys counts once, whatever their number; known keys only do not count', async () => {
    const before = await scrapedWarnings();
    // Exposed at 0 from the start: an alert's increase() sees the first review rise from it.
    expect(before).toBeDefined();
    const typos = { 'config.meshauth.dev/appport': '8080', 'config.meshauth.dev/loglevel': 'debug' };
    expect((await post(server.port, cert.caPem, '/mutate', review('u-count-1', typos))).status).toBe(200);
    expect(await scrapedWarnings()).toBe((before ?? 0) + 1);
    const known = { 'config.meshauth.dev/app-port': '3000' };
    expect((await post(server.port, cert.caPem, '/mutate', review('u-count-2', known))).status).toBe(200);
    expect(await scrapedWarnings()).toBe((before ?? 0) + 1);
    const text = (await fetchText(server.port, cert.caPem, '/metrics')).text;
    // The keys are the pod creator's input: never a label.
    expect(text).not.toContain('appport');
  });

  it.skipIf(!available('promtool'))('ok/promtool check metrics accepts the scrape with the counter', async () => {
    const text = (await fetchText(server.port, cert.caPem, '/metrics')).text;
    expect(text).toContain(`# TYPE ${WARNINGS_METRIC} counter`);
    const result = await runCommand('promtool', ['check', 'metrics'], { input: text });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it('ok/only the webhook exposes it: in another role its 0 would say something false', async () => {
    expect(await new Metrics().exposition()).not.toContain(WARNINGS_METRIC);
  });
});
