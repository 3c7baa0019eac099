// The webhook re-reads its serving certificate when the files change (as a Secret volume update swaps them):
// new connections get the new certificate without a restart; a pair that does not load (key of another
// certificate) keeps the old one serving and is counted as a failed reload.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveInjectConfig } from '../../src/k8s/index.js';
import { WebhookServer } from '../../src/k8s/webhook-server.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { waitFor } from '../helpers/wait.js';
import { fetchText, makeWebhookCert, type WebhookCert } from '../helpers/webhook-tls.js';

function servedFingerprint(port: number, cas: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host: '127.0.0.1', port, ca: [...cas], servername: 'meshauth-webhook.meshauth.svc' },
      () => {
        const fingerprint = socket.getPeerX509Certificate()?.fingerprint256 ?? '';
        socket.end();
        resolve(fingerprint);
      },
    );
    socket.once('error', reject);
  });
}

function fingerprintOf(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

/** Writes like the kubelet's atomic update: a new file renamed over the old name. */
function swap(path: string, content: string): void {
  writeFileSync(`${path}.tmp`, content);
  renameSync(`${path}.tmp`, path);
}

describe('webhook certificate reload', () => {
  let dir: string;
  let first: WebhookCert;
  let second: WebhookCert;
  let third: WebhookCert;
  let metrics: Metrics;
  let server: WebhookServer;
  const reloads = async (result: string) =>
    (await metrics.webhookCertReloads.get()).values.find((v) => v.labels.result === result)?.value ?? 0;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshauth-webhook-reload-'));
    first = makeWebhookCert(dir, 'first');
    second = makeWebhookCert(dir, 'second');
    third = makeWebhookCert(dir, 'third');
    writeFileSync(join(dir, 'tls.crt'), first.certPem);
    writeFileSync(join(dir, 'tls.key'), first.keyPem);
    metrics = new Metrics();
    server = new WebhookServer({
      host: '127.0.0.1',
      port: 0,
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      config: resolveInjectConfig(),
      metrics,
      logger: silentLogger(),
      reloadIntervalMs: 25,
    });
    await server.listen();
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('ok/new connections get the new certificate once the files change', async () => {
    const cas = [first.caPem, second.caPem, third.caPem];
    expect(await servedFingerprint(server.port, cas)).toBe(fingerprintOf(first.certPem));
    swap(join(dir, 'tls.key'), second.keyPem);
    swap(join(dir, 'tls.crt'), second.certPem);
    const wanted = fingerprintOf(second.certPem);
    await waitFor(
      'the second certificate',
      async () => (await servedFingerprint(server.port, cas)) === wanted,
      5_000,
      25,
    );
    expect(await reloads('success')).toBeGreaterThanOrEqual(1);
    // Verified against the second CA alone: the chain really changed, not just the leaf bytes.
    expect((await fetchText(server.port, second.caPem, '/healthz')).status).toBe(200);
  });

  it('fail/a certificate with the key of another one is refused; the current one keeps serving', async () => {
    const cas = [first.caPem, second.caPem, third.caPem];
    const failuresBefore = await reloads('failure');
    swap(join(dir, 'tls.crt'), third.certPem); // the key file still holds the second key
    await waitFor('a failed reload', async () => (await reloads('failure')) > failuresBefore, 5_000, 25);
    expect(await servedFingerprint(server.port, cas)).toBe(fingerprintOf(second.certPem));
    // Once the matching key arrives too, the third pair loads.
    swap(join(dir, 'tls.key'), third.keyPem);
    const wanted = fingerprintOf(third.certPem);
    await waitFor(
      'the third certificate',
      async () => (await servedFingerprint(server.port, cas)) === wanted,
      5_000,
      25,
    );
  });
});
