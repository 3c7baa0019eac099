// The admin-style listeners (the sidecar's and the gateway's admin port, `ca serve --admin-listen`, the injection
// webhook) refused an unknown path (404), a method they do not serve (405) and what node:http refuses before their
// handlers (a malformed head 400, a head past 16 KiB 431, an `Expect` other than 100-continue 417; CONNECT, whose
// connection node:http closed without a byte) without counting or logging any of it. Found by an outside review
// (2026-12-03); docs/security-tests.md lists it as a known limit, no document says the admin port is left uncounted
// on purpose. Each refusal is now counted once in meshauth_requests_rejected_total{direction="admin", code} with one
// `admin_request_rejected` line (node's own refusals rate-limited: a suppressed line is counted in
// meshauth_log_lines_suppressed_total), the answers keep their status, and the listener serves on.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveInjectConfig } from '../../src/k8s/index.js';
import { WebhookServer } from '../../src/k8s/webhook-server.js';
import { Metrics } from '../../src/telemetry/index.js';
import { startCaInTempDir, type TestCaServer } from '../helpers/ca-dir.js';
import { type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';
import { type LogLines, logLines } from '../helpers/log-lines.js';
import { startApp, startTestSidecar, type TestApp, type TestSidecar, testConfig } from '../helpers/sidecar-harness.js';
import { rawTcpExchange } from '../helpers/tcp-client.js';
import { TestCa } from '../helpers/test-ca.js';
import { makeWebhookCert } from '../helpers/webhook-tls.js';

interface Target {
  readonly metrics: Metrics;
  readonly log: LogLines;
  send(bytes: string): Promise<string>;
}

/** Writes `bytes` over TLS (the webhook's certificate checked against `caPem`) and resolves with all it answered. */
function tlsExchange(port: number, caPem: string, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: caPem, servername: 'meshauth-webhook.meshauth.svc' });
    socket.once('secureConnect', () => socket.write(bytes));
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.once('error', (error) => (chunks.length > 0 ? undefined : reject(error)));
    socket.setTimeout(5_000, () => socket.destroy());
    socket.once('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
  });
}

const targets: Record<'sidecar' | 'gateway' | 'ca' | 'webhook', () => Target> = {} as never;
let ca: TestCa;
let app: TestApp;
let sidecar: TestSidecar;
let caServer: TestCaServer;
let webhook: WebhookServer;
let webhookDir: string;
let gateway: GatewayMesh;

beforeAll(async () => {
  ca = await TestCa.create('example.org');
  app = await startApp();
  const sidecarLog = logLines('sidecar', 'info');
  sidecar = await startTestSidecar(ca, ca.idFor('/ns/shop/sa/server'), testConfig({ appPort: app.port }), {
    logger: sidecarLog.logger,
  });
  const sidecarTarget: Target = {
    metrics: sidecar.metrics,
    log: sidecarLog,
    send: async (bytes) =>
      (await rawTcpExchange(sidecar.sidecar.adminPort, Buffer.from(bytes, 'latin1'))).bytes.toString('latin1'),
  };
  const caLog = logLines('ca', 'info');
  const caMetrics = new Metrics();
  caServer = await startCaInTempDir({
    adminListen: '127.0.0.1:0',
    svidTtlMs: 10 * 60_000,
    workers: 0,
    logger: caLog.logger,
    metrics: caMetrics,
  });
  const caAdminPort = Number(new URL(caServer.server.adminUrl as string).port);
  const caTarget: Target = {
    metrics: caMetrics,
    log: caLog,
    send: async (bytes) => (await rawTcpExchange(caAdminPort, Buffer.from(bytes, 'latin1'))).bytes.toString('latin1'),
  };
  webhookDir = mkdtempSync(join(tmpdir(), 'meshauth-admin-refusals-'));
  const cert = makeWebhookCert(webhookDir, 'webhook');
  writeFileSync(join(webhookDir, 'tls.crt'), cert.certPem);
  writeFileSync(join(webhookDir, 'tls.key'), cert.keyPem);
  const webhookLog = logLines('webhook', 'info');
  const webhookMetrics = new Metrics();
  webhook = new WebhookServer({
    host: '127.0.0.1',
    port: 0,
    certFile: join(webhookDir, 'tls.crt'),
    keyFile: join(webhookDir, 'tls.key'),
    config: resolveInjectConfig({ trustDomain: 'example.org' }),
    metrics: webhookMetrics,
    logger: webhookLog.logger,
  });
  const webhookPort = await webhook.listen();
  const webhookTarget: Target = {
    metrics: webhookMetrics,
    log: webhookLog,
    send: (bytes) => tlsExchange(webhookPort, cert.caPem, bytes),
  };
  gateway = await startGatewayMesh();
  const gatewayTarget: Target = {
    metrics: gateway.metrics,
    log: gateway.log,
    send: async (bytes) =>
      (await rawTcpExchange(gateway.gateway.adminPort, Buffer.from(bytes, 'latin1'))).bytes.toString('latin1'),
  };
  targets.sidecar = () => sidecarTarget;
  targets.gateway = () => gatewayTarget;
  targets.ca = () => caTarget;
  targets.webhook = () => webhookTarget;
});

afterAll(async () => {
  await sidecar?.sidecar.close(0);
  await app?.close();
  await caServer?.close();
  await webhook?.close();
  await gateway?.close();
  if (webhookDir !== undefined) rmSync(webhookDir, { recursive: true, force: true });
});

/** meshauth_requests_rejected_total{direction="admin"} by code, and the lines about them (written or suppressed). */
async function refusals(target: Target): Promise<{ counted: Record<string, number>; lines: number }> {
  const counted: Record<string, number> = {};
  for (const v of (await target.metrics.requestsRejected.get()).values) {
    if (v.labels.direction === 'admin') counted[String(v.labels.code)] = v.value;
  }
  const suppressed = (await target.metrics.logLinesSuppressed.get()).values.find(
    (v) => v.labels.event === 'admin_request_rejected',
  );
  return { counted, lines: target.log.find({ event: 'admin_request_rejected' }).length + (suppressed?.value ?? 0) };
}

const CASES: ReadonlyArray<readonly [string, number, string, string]> = [
  ['unknown path', 404, 'NOT_FOUND', 'GET /debug/config_dump HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'],
  ['wrong method', 405, 'METHOD_NOT_ALLOWED', 'DELETE /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'],
  ['malformed head', 400, 'BAD_REQUEST', 'GET /livez HTTP/1.1\r\nHost: x\r\nbad header line\r\n\r\n'],
  [
    'head past 16 KiB',
    431,
    'HEADERS_TOO_LARGE',
    `GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
  ],
  ['CONNECT', 405, 'METHOD_NOT_ALLOWED', 'CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n'],
  [
    'Expect other than 100-continue',
    417,
    'EXPECTATION_FAILED',
    'GET /livez HTTP/1.1\r\nHost: x\r\nExpect: x\r\nConnection: close\r\n\r\n',
  ],
];

const CODE_PREFIX: Record<string, string> = {
  NOT_FOUND: 'MESHAUTH_ERR_ADMIN_',
  METHOD_NOT_ALLOWED: 'MESHAUTH_ERR_ADMIN_',
  BAD_REQUEST: 'MESHAUTH_ERR_',
  HEADERS_TOO_LARGE: 'MESHAUTH_ERR_',
  EXPECTATION_FAILED: 'MESHAUTH_ERR_',
};

describe('admin listeners: refusals are counted once and logged once', () => {
  for (const server of ['sidecar', 'gateway', 'ca', 'webhook'] as const) {
    it.each(CASES)(`fail/${server}: %s → %i, counted and logged`, async (_name, status, suffix, bytes) => {
      const target = targets[server]();
      const code = `${CODE_PREFIX[suffix]}${suffix}`;
      const before = await refusals(target);
      const reply = await target.send(bytes);
      expect(reply.split('\r\n', 1)[0]).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
      const after = await refusals(target);
      expect(after.counted[code] ?? 0).toBe((before.counted[code] ?? 0) + 1);
      const total = (c: Record<string, number>) => Object.values(c).reduce((a, b) => a + b, 0);
      expect(total(after.counted)).toBe(total(before.counted) + 1);
      expect(after.lines).toBe(before.lines + 1);
      for (const line of target.log.find({ event: 'admin_request_rejected', code })) {
        expect(line).toMatchObject({ direction: 'admin', status, level: 'warn' });
      }
    });

    it(`ok/${server}: serves on after the refusals`, async () => {
      const path = server === 'webhook' ? '/healthz' : '/livez';
      const reply = await targets[server]().send(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      expect(reply.split('\r\n', 1)[0]).toBe('HTTP/1.1 200 OK');
    });
  }
});
