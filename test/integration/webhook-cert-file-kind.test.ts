// The webhook's --tls-cert/--tls-key naming something other than a regular file: at start the error names the flag
// and says "not a regular file" (it said only "cannot read the webhook certificate and key", with EISDIR in the
// cause); a reload to such a path keeps the current certificate serving and is counted and logged as a failed reload.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMeshauthError } from '../../src/errors/index.js';
import { resolveInjectConfig } from '../../src/k8s/index.js';
import { WebhookServer } from '../../src/k8s/webhook-server.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { logLines } from '../helpers/log-lines.js';
import { waitFor } from '../helpers/wait.js';
import { fetchText, makeWebhookCert, type WebhookCert } from '../helpers/webhook-tls.js';

let dir: string;
let cert: WebhookCert;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'meshauth-webhook-file-kind-'));
  cert = makeWebhookCert(dir, 'first');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function webhook(certFile: string, keyFile: string, options: { metrics?: Metrics; log?: ReturnType<typeof logLines> }) {
  return new WebhookServer({
    host: '127.0.0.1',
    port: 0,
    certFile,
    keyFile,
    config: resolveInjectConfig(),
    metrics: options.metrics ?? new Metrics(),
    logger: options.log?.logger ?? silentLogger(),
    reloadIntervalMs: 25,
  });
}

describe('webhook certificate files that are not regular files', () => {
  it('fail/a directory as --tls-cert fails the start: "--tls-cert: certificate file <path>: not a regular file"', async () => {
    const certDir = join(dir, 'cert.d');
    mkdirSync(certDir);
    const keyFile = join(dir, 'start.key');
    writeFileSync(keyFile, cert.keyPem);
    const server = webhook(certDir, keyFile, {});
    const error = await server.listen().then(
      () => new Error('expected the start to fail'),
      (e: unknown) => e,
    );
    await server.close();
    expect(isMeshauthError(error, 'MESHAUTH_ERR_FILE_UNREADABLE')).toBe(true);
    expect((error as Error).message).toBe(`--tls-cert: certificate file ${certDir}: not a regular file`);
  });

  it('fail/a reload to a directory at --tls-key keeps the current certificate serving, counted and logged', async () => {
    const certFile = join(dir, 'tls.crt');
    const keyFile = join(dir, 'tls.key');
    writeFileSync(certFile, cert.certPem);
    writeFileSync(keyFile, cert.keyPem);
    const metrics = new Metrics();
    const log = logLines('webhook');
    const server = webhook(certFile, keyFile, { metrics, log });
    await server.listen();
    try {
      const failures = async () =>
        (await metrics.webhookCertReloads.get()).values.find((v) => v.labels.result === 'failure')?.value ?? 0;
      rmSync(keyFile);
      mkdirSync(keyFile);
      await waitFor('a failed reload', async () => (await failures()) > 0, 5_000, 25);
      expect((await fetchText(server.port, cert.caPem, '/healthz')).status).toBe(200);
      const warned = log.lines.map((line) => String(line.error ?? ''));
      expect(warned.some((text) => text.includes(`--tls-key: key file ${keyFile}: not a regular file`))).toBe(true);
    } finally {
      await server.close();
    }
  });
});
