// The webhook on real HTTPS (127.0.0.1) with a pod whose config.meshauth.dev key is no setting (a typo): the pod is
// admitted and injected (never denied for it, failClosed or not), the AdmissionReview answer carries a warning kubectl
// prints, and the review's one log line is a warn with the code and the key.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveInjectConfig } from '../../src/k8s/index.js';
import { WebhookServer } from '../../src/k8s/webhook-server.js';
import { Metrics } from '../../src/telemetry/index.js';
import { podCreateReview } from '../helpers/admission-review.js';
import { logLines } from '../helpers/log-lines.js';
import { makeWebhookCert, post, type WebhookCert } from '../helpers/webhook-tls.js';

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
});
