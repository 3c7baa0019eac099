// The admission webhook on real HTTPS (127.0.0.1, an openssl-made serving certificate): AdmissionReviews in,
// base64 JSON Patches out. Each patch is applied with an independent RFC 6902 applier and must give exactly what
// `meshauth inject` writes for the same pod template; reviews it cannot handle are admitted unpatched with a
// warning, a log line and a metric (refused when failClosed is set).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { injectYaml, resolveInjectConfig } from '../../src/k8s/index.js';
import { podTemplateOf } from '../../src/k8s/inject-object.js';
import { WebhookServer } from '../../src/k8s/webhook-server.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { applyJsonPatch, type Operation } from '../helpers/json-patch.js';
import { validateKubernetesObject } from '../helpers/k8s-schema.js';
import { logLines } from '../helpers/log-lines.js';
import { available, runCommand } from '../helpers/sidecar-harness.js';
import { type Answer, fetchText, makeWebhookCert, post, type WebhookCert } from '../helpers/webhook-tls.js';

const FIXTURES = new URL('../fixtures/k8s/', import.meta.url).pathname;
const CONFIG = resolveInjectConfig({ trustDomain: 'example.org', noProxy: ['.example.com'] });

function review(object: unknown, options: { kind?: string; operation?: string; uid?: string } = {}): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: options.uid ?? 'd1f9a6ac-5f5c-4c39-9b7e-1a2b3c4d5e6f',
      kind: { group: '', version: 'v1', kind: options.kind ?? 'Pod' },
      resource: { group: '', version: 'v1', resource: options.kind === 'Service' ? 'services' : 'pods' },
      namespace: 'shop',
      operation: options.operation ?? 'CREATE',
      object,
      dryRun: false,
    },
  });
}

interface ReviewAnswer {
  uid: string;
  allowed: boolean;
  patchType?: string;
  patch?: string;
  warnings?: string[];
  status?: { code: number; message: string };
}

function responseOf(answer: Answer): ReviewAnswer {
  expect(answer.status).toBe(200);
  expect(answer.body.apiVersion).toBe('admission.k8s.io/v1');
  expect(answer.body.kind).toBe('AdmissionReview');
  return answer.body.response as ReviewAnswer;
}

function patched(object: unknown, response: ReviewAnswer): unknown {
  if (response.patch === undefined) return object;
  expect(response.patchType).toBe('JSONPatch');
  const ops = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as Operation[];
  return applyJsonPatch(object, ops);
}

/** Pod objects made from the workload fixtures' pod templates, and what `inject` made of the same templates. */
function templatesOf(file: string): { before: Record<string, unknown>; after: Record<string, unknown> }[] {
  const source = readFileSync(join(FIXTURES, file), 'utf8');
  const injected = injectYaml(source, CONFIG).text;
  const objects = (text: string) => parseAllDocuments(text, { version: '1.1' }).map((d) => d.toJS() as unknown);
  const asPod = (o: unknown) => {
    const template = podTemplateOf(o as Record<string, unknown>);
    return template === undefined ? undefined : { apiVersion: 'v1', kind: 'Pod', ...structuredClone(template) };
  };
  const before = objects(source).map(asPod);
  const after = objects(injected).map(asPod);
  return before.flatMap((b, i) => (b === undefined ? [] : [{ before: b, after: after[i] as Record<string, unknown> }]));
}

describe('webhook /mutate', () => {
  let dir: string;
  let cert: WebhookCert;
  let metrics: Metrics;
  const log = logLines('webhook');
  let server: WebhookServer;
  let closedServer: WebhookServer;
  const mutate = (body: string, type?: string) => post(server.port, cert.caPem, '/mutate', body, type);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshauth-webhook-'));
    cert = makeWebhookCert(dir, 'serving');
    writeFileSync(join(dir, 'tls.crt'), cert.certPem);
    writeFileSync(join(dir, 'tls.key'), cert.keyPem);
    metrics = new Metrics();
    const options = { host: '127.0.0.1', port: 0, certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') };
    server = new WebhookServer({ ...options, config: CONFIG, metrics, logger: log.logger });
    await server.listen();
    closedServer = new WebhookServer({
      ...options,
      config: resolveInjectConfig({ trustDomain: 'example.org', failClosed: true }),
      metrics: new Metrics(),
      logger: silentLogger(),
    });
    await closedServer.listen();
  });
  afterAll(async () => {
    await server?.close();
    await closedServer?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const file of ['deployment-two-containers.yaml', 'statefulset.yaml', 'cronjob.yaml', 'job.yaml', 'pod.yaml']) {
    it(`ok/${file}: the patched pod equals what meshauth inject wrote`, async () => {
      const cases = templatesOf(file);
      expect(cases.length).toBeGreaterThan(0);
      for (const { before, after } of cases) {
        const response = responseOf(await mutate(review(before)));
        expect(response.allowed).toBe(true);
        expect(response.uid).toBe('d1f9a6ac-5f5c-4c39-9b7e-1a2b3c4d5e6f');
        expect(patched(before, response)).toEqual(after);
      }
    });
  }

  it('ok/a review as the API server sends it (defaults, generateName, service-account volume) gives a valid pod', async () => {
    const body = readFileSync(join(FIXTURES, 'admission-review-pod.json'), 'utf8');
    const pod = (JSON.parse(body) as { request: { object: Record<string, unknown> } }).request.object;
    const response = responseOf(await mutate(body));
    expect(response).toMatchObject({ uid: '5b0e8c7a-2f4d-4f1e-9c3a-7d6b2e1f0a9c', allowed: true });
    const injected = patched(pod, response) as Record<string, unknown>;
    // The API server sets the name from generateName after admission; the schema checks want one.
    const named = { ...injected, metadata: { ...(injected.metadata as object), name: 'orders-7d9c8b6f5-abcde' } };
    expect(validateKubernetesObject(named)).toEqual([]);
    const spec = injected.spec as { initContainers: { name: string }[]; volumes: { name: string }[] };
    expect(spec.initContainers.map((c) => c.name)).toEqual(['meshauth-proxy']);
    expect(spec.volumes.map((v) => v.name)).toEqual([
      'kube-api-access-x7k2p',
      'meshauth-token',
      'meshauth-trust-bundle',
      'meshauth-policy',
    ]);
  });

  it('ok/a pod without apiVersion and kind (as the API server may send it) gets a patch that adds neither', async () => {
    const { before, after } = templatesOf('pod.yaml')[0] as {
      before: Record<string, unknown>;
      after: Record<string, unknown>;
    };
    const { apiVersion: _a, kind: _k, ...bare } = before;
    const { apiVersion: _b, kind: _l, ...bareAfter } = after;
    expect(patched(bare, responseOf(await mutate(review(bare))))).toEqual(bareAfter);
  });

  it('ok/a Service CREATE gains the meshauth-in port; UPDATE keeps it (idempotent patch)', async () => {
    const service = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'orders', namespace: 'shop' },
      spec: { selector: { app: 'orders' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
    };
    const created = patched(service, responseOf(await mutate(review(service, { kind: 'Service' })))) as typeof service;
    expect(created.spec.ports).toContainEqual({
      name: 'meshauth-in',
      port: 15006,
      targetPort: 'meshauth-in',
      protocol: 'TCP',
    });
    const again = responseOf(await mutate(review(created, { kind: 'Service', operation: 'UPDATE' })));
    expect(again.patch).toBeUndefined();
  });

  it('ok/opted-out pod, pod UPDATE and other kinds: admitted without a patch', async () => {
    const [legacy] = templatesOf('opted-out.yaml');
    for (const body of [
      review(legacy?.before),
      review(templatesOf('pod.yaml')[0]?.before, { operation: 'UPDATE' }),
      review({ metadata: { name: 'x' }, data: {} }, { kind: 'ConfigMap' }),
    ]) {
      const response = responseOf(await mutate(body));
      expect(response.allowed).toBe(true);
      expect(response.patch).toBeUndefined();
    }
  });

  it('ok/a hostNetwork pod is admitted without a patch and with a warning', async () => {
    const pod = parseAllDocuments(readFileSync(join(FIXTURES, 'host-network.yaml'), 'utf8'))[0]?.toJS() as unknown;
    const response = responseOf(await mutate(review(pod)));
    expect(response.allowed).toBe(true);
    expect(response.patch).toBeUndefined();
    expect(response.warnings?.join('\n')).toMatch(/hostNetwork/);
  });

  it('fail/a pod with an unusable annotation: admitted unpatched with a warning and counted as error', async () => {
    const before = await errorCount(metrics);
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'bad', annotations: { 'config.meshauth.dev/app-port': 'http' } },
      spec: { containers: [{ name: 'app', image: 'app:1' }] },
    };
    const response = responseOf(await mutate(review(pod)));
    expect(response.allowed).toBe(true);
    expect(response.patch).toBeUndefined();
    expect(response.warnings?.[0]).toMatch(/not injected: .*config\.meshauth\.dev\/app-port/);
    expect(await errorCount(metrics)).toBe(before + 1);
    // One structured log line for it, naming the object and the reason.
    const lines = log.find({ msg: 'admission review not handled', object: 'Pod bad' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'warn', result: 'error', reason: 'inject_failed' });
  });

  it('fail/failClosed: the same pod is refused with the reason', async () => {
    const pod = {
      metadata: { name: 'bad', annotations: { 'config.meshauth.dev/log-level': 'loud' } },
      spec: { containers: [{ name: 'app', image: 'app:1' }] },
    };
    const answer = await post(closedServer.port, cert.caPem, '/mutate', review(pod));
    const response = responseOf(answer);
    expect(response.allowed).toBe(false);
    expect(response.status?.message).toMatch(/log-level/);
  });

  it('fail/not a review → 400; wrong content type → 415; GET /mutate → 405; counted as invalid, never as error', async () => {
    // `error` drives the alert for pods admitted without their sidecar: junk from whoever reaches the port (the API
    // server never sends it) must not raise it.
    const before = await errorCount(metrics);
    const invalidBefore = await errorCount(metrics, 'invalid');
    expect((await mutate('{"kind":"Pod"}')).status).toBe(400);
    expect((await mutate('not json')).status).toBe(400);
    expect((await mutate(review({}), 'text/plain')).status).toBe(415);
    expect(await errorCount(metrics)).toBe(before);
    expect(await errorCount(metrics, 'invalid')).toBe(invalidBefore + 3);
    const get = await fetchText(server.port, cert.caPem, '/mutate');
    expect(get.status).toBe(405);
  });

  it.skipIf(!available('promtool'))('ok/promtool check metrics accepts the webhook exposition', async () => {
    const text = (await fetchText(server.port, cert.caPem, '/metrics')).text;
    const result = await runCommand('promtool', ['check', 'metrics'], { input: text });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it('ok/the error and failure series are scraped at 0 before the first one, so the alerts see it rise', async () => {
    const fresh = new WebhookServer({
      host: '127.0.0.1',
      port: 0,
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      config: CONFIG,
      metrics: new Metrics(),
      logger: silentLogger(),
    });
    await fresh.listen();
    try {
      const before = (await fetchText(fresh.port, cert.caPem, '/metrics')).text;
      expect(before).toMatch(/^meshauth_webhook_reviews_total\{result="error"\} 0$/m);
      expect(before).toMatch(/^meshauth_webhook_reviews_total\{result="invalid"\} 0$/m);
      expect(before).toMatch(/^meshauth_webhook_cert_reloads_total\{result="failure"\} 0$/m);
      // A webhook holds no SVID: an expiry of 0 would read as one about to lapse.
      expect(before).not.toContain('meshauth_svid_expiry_timestamp_seconds');
      expect((await post(fresh.port, cert.caPem, '/mutate', '{}', 'text/plain')).status).toBe(415);
      const after = (await fetchText(fresh.port, cert.caPem, '/metrics')).text;
      expect(after).toMatch(/^meshauth_webhook_reviews_total\{result="invalid"\} 1$/m);
    } finally {
      await fresh.close();
    }
  });

  it('fail/150 refused bodies (413, 415, not a review): all counted, their log lines rate-limited', async () => {
    const refusals = logLines('webhook');
    const fresh = new WebhookServer({
      host: '127.0.0.1',
      port: 0,
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      config: CONFIG,
      metrics: new Metrics(),
      logger: refusals.logger,
    });
    await fresh.listen();
    expect((await fetchText(fresh.port, cert.caPem, '/metrics')).text).toMatch(
      /^meshauth_webhook_reviews_total\{result="error"\} 0$/m,
    );
    const started = Date.now();
    try {
      for (let i = 0; i < 50; i++) {
        expect((await post(fresh.port, cert.caPem, '/mutate', '{}', 'text/plain')).status).toBe(415);
        expect(await declaredTooLarge(fresh.port, cert.caPem)).toBe(413);
        expect((await post(fresh.port, cert.caPem, '/mutate', '{"kind":"Pod"}', 'application/json')).status).toBe(400);
      }
      const text = (await fetchText(fresh.port, cert.caPem, '/metrics')).text;
      // The 413s are the API server's possible calls (a huge pod): errors; the 415s and junk bodies are not.
      expect(text).toMatch(/^meshauth_webhook_reviews_total\{result="error"\} 50$/m);
      expect(text).toMatch(/^meshauth_webhook_reviews_total\{result="invalid"\} 100$/m);
      const kinds = new Set(['content_type', 'too_large', 'not_a_review']);
      const written = refusals.lines.filter((l) => kinds.has(String(l.reason)) && typeof l.suppressed !== 'number');
      const suppressed = Number(
        /^meshauth_log_lines_suppressed_total\{event="admission_review_refused"\} (\d+)$/m.exec(text)?.[1] ?? 0,
      );
      expect(written.length + suppressed).toBe(150);
      // One line per kind per 10 s window.
      expect(written.length).toBeLessThanOrEqual(3 * (1 + Math.floor((Date.now() - started) / 10_000)));
      expect(written.every((l) => l.event === 'admission_review_refused' && l.level === 'warn')).toBe(true);
    } finally {
      await fresh.close();
    }
    // close() writes the summary of what was held back.
    expect(refusals.lines.filter((l) => typeof l.suppressed === 'number').length).toBeGreaterThanOrEqual(1);
  });

  it('ok/healthz and metrics on the same port', async () => {
    expect((await fetchText(server.port, cert.caPem, '/healthz')).status).toBe(200);
    const text = (await fetchText(server.port, cert.caPem, '/metrics')).text;
    expect(text).toMatch(/meshauth_webhook_reviews_total\{result="injected"\} [1-9]/);
    expect(text).toMatch(/meshauth_webhook_reviews_total\{result="skipped"\} [1-9]/);
  });
});

/** POST /mutate declaring a body over the 4 MiB cap, none of it sent: the status of the answer. */
function declaredTooLarge(port: number, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      path: '/mutate',
      method: 'POST',
      ca,
      servername: 'meshauth-webhook.meshauth.svc',
      headers: { 'content-type': 'application/json', 'content-length': 5 * 1024 * 1024 },
      agent: false,
    });
    req.once('response', (res) => {
      res.resume();
      res.once('end', () => {
        req.destroy();
        resolve(res.statusCode ?? 0);
      });
    });
    req.once('error', reject);
    req.flushHeaders();
  });
}

async function errorCount(metrics: Metrics, result = 'error'): Promise<number> {
  const value = (await metrics.webhookReviews.get()).values.find((v) => v.labels.result === result);
  return value?.value ?? 0;
}
