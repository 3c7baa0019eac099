// IPv4 clients of a dual-stack listener. A listener on `[::]` (what injection writes) is an IPv6 socket: an IPv4
// client arrives as `::ffff:10.0.0.5`. Each listener here is bound to ::ffff:127.0.0.1, an IPv6 socket on loopback;
// clients dial 127.0.0.1 and the server sees ::ffff:127.0.0.1. The app's X-Forwarded-For and every log line must
// name the client 127.0.0.1, as an IPv4 listener does, and its connections must count as one source.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePolicy, parsePolicy } from '../../src/authz/index.js';
import { loadCaMaterial, startCaServer } from '../../src/ca/index.js';
import { resolveInjectConfig } from '../../src/k8s/index.js';
import { WebhookServer } from '../../src/k8s/webhook-server.js';
import { Metrics } from '../../src/telemetry/index.js';
import { makeCaDir } from '../helpers/ca-dir.js';
import { endUserToken } from '../helpers/end-user-keys.js';
import { EXTERNAL_ISSUER, type ExternalSidecar, startExternalSidecar } from '../helpers/external-sidecar.js';
import { logLines } from '../helpers/log-lines.js';
import { connectionsOpen } from '../helpers/sidecar-harness.js';
import { rawClient } from '../helpers/tcp-client.js';
import { echo, startTcpApp, startTcpTunnelPair } from '../helpers/tcp-tunnel-pair.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';
import { makeWebhookCert, post } from '../helpers/webhook-tls.js';

const MAPPED = '::ffff:127.0.0.1';

/** Sends garbage where a ClientHello belongs and waits for the server to close. */
function notAClientHello(port: number): Promise<void> {
  return new Promise((resolve) => {
    const raw: Socket = netConnect({ host: '127.0.0.1', port });
    raw.on('error', () => undefined);
    raw.once('connect', () => raw.end('not a client hello\r\n\r\n'));
    raw.once('close', () => resolve());
  });
}

describe('IPv4 clients of a dual-stack sidecar (inbound and external listeners on ::ffff:127.0.0.1)', () => {
  const log = logLines('sidecar');
  let edge: ExternalSidecar;
  let token: string;
  const sockets = new Set<TLSSocket>();
  const open = () =>
    new Promise<TLSSocket | undefined>((resolve) => {
      const s = tlsConnect({
        host: '127.0.0.1',
        port: edge.sc.sidecar.externalPort as number,
        ca: edge.ca.rootPem,
        servername: 'localhost',
        ALPNProtocols: ['http/1.1'],
      });
      sockets.add(s);
      const timer = setTimeout(() => resolve(undefined), 2_000);
      s.once('secureConnect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.on('error', () => {
        clearTimeout(timer);
        resolve(undefined);
      });
    });

  beforeAll(async () => {
    // maxConnections 8: one source (one address, an IPv6 client by its /64) holds at most 2.
    edge = await startExternalSidecar({ listenHost: MAPPED, maxConnections: 8, logger: log.logger });
    token = await endUserToken(edge.key, EXTERNAL_ISSUER, 'api', 'alice');
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await edge?.close();
  });

  it('ok/the app is told X-Forwarded-For: 127.0.0.1, not ::ffff:127.0.0.1', async () => {
    const s = await open();
    expect(s).toBeDefined();
    const answer = await new Promise<string>((resolve) => {
      let out = '';
      s?.on('data', (d: Buffer) => {
        out += d.toString('latin1');
      });
      s?.once('close', () => resolve(out));
      s?.write(`GET /x HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`);
    });
    expect(answer.startsWith('HTTP/1.1 200')).toBe(true);
    expect(edge.app.seen.at(-1)?.headers['x-forwarded-for']).toBe('127.0.0.1');
  });

  it('ok/one client is one source: its third connection is refused and logged as 127.0.0.1', async () => {
    const held = [await open(), await open()];
    expect(held.every((s) => s !== undefined)).toBe(true);
    expect(await open()).toBeUndefined();
    const line = await waitFor('the refusal line', () => log.find({ reason: 'max_connections_per_source' })[0]);
    expect(line.remote).toBe('127.0.0.1');
    for (const s of held) s?.destroy();
    // The listener has seen the closes before the next test connects from the same source.
    await waitFor('the closes', async () => (await connectionsOpen(edge.sc.metrics, 'external')) === 0);
  });

  it('ok/a failed handshake on the external and on the inbound listener is logged as 127.0.0.1', async () => {
    await notAClientHello(edge.sc.sidecar.externalPort as number);
    await notAClientHello(edge.sc.sidecar.inboundPort);
    const lines = await waitFor('two handshake lines', () => {
      const found = log.lines.filter((l) => l.msg === 'TLS handshake refused');
      return found.length >= 2 ? found : undefined;
    });
    expect(lines.map((l) => [l.direction, l.remote])).toEqual([
      ['external', '127.0.0.1'],
      ['inbound', '127.0.0.1'],
    ]);
  });
});

describe('IPv4 clients of a dual-stack TCP tunnel (server side on ::ffff:127.0.0.1)', () => {
  it('ok/a policy refusal is logged as 127.0.0.1; when.sourceIps 127.0.0.1 matches the mapped address', async () => {
    const ca = await TestCa.create('example.org');
    const app = await startTcpApp(echo);
    const log = logLines('sidecar');
    const clientId = ca.idFor('/ns/shop/sa/client');
    let text = `rules:\n  - { name: other, action: allow, from: { ids: ["${ca.idFor('/ns/x/sa/y')}"] } }\n`;
    const pair = await startTcpTunnelPair(ca, {
      appPort: app.port,
      serverHost: MAPPED,
      logger: log.logger,
      policy: () => compilePolicy(parsePolicy(`apiVersion: meshauth.dev/v1\nkind: Policy\n${text}`, 'policy.yaml')),
    });
    try {
      const denied = await rawClient(pair.port);
      await denied.closed;
      const line = await waitFor('the refusal line', () => log.find({ msg: 'tcp connection refused' })[0]);
      expect([line.result, line.remote]).toEqual(['denied', '127.0.0.1']);

      text = `rules:\n  - { name: v4, action: allow, from: { ids: ["${clientId}"] }, when: { sourceIps: ["127.0.0.1/32"] } }\n`;
      const allowed = await rawClient(pair.port);
      allowed.socket.write('hello');
      await waitFor('the echo', () => allowed.received().toString() === 'hello');
      allowed.socket.end();
      await allowed.closed;
    } finally {
      await pair.close();
      await app.close();
    }
  });
});

describe('IPv4 clients of a dual-stack webhook (on ::ffff:127.0.0.1)', () => {
  it('ok/a refused review is logged as 127.0.0.1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshauth-mapped-webhook-'));
    const cert = makeWebhookCert(dir, 'serving');
    writeFileSync(join(dir, 'tls.crt'), cert.certPem);
    writeFileSync(join(dir, 'tls.key'), cert.keyPem);
    const log = logLines('webhook');
    const server = new WebhookServer({
      host: MAPPED,
      port: 0,
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      config: resolveInjectConfig({ trustDomain: 'example.org' }),
      metrics: new Metrics(),
      logger: log.logger,
    });
    try {
      await server.listen();
      const answer = await post(server.port, cert.caPem, '/mutate', 'x', 'text/plain');
      expect(answer.status).toBe(415);
      const line = await waitFor('the refusal line', () => log.find({ reason: 'content_type' })[0]);
      expect(line.remote).toBe('127.0.0.1');
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('IPv4 clients of a dual-stack CA (on ::ffff:127.0.0.1)', () => {
  it('ok/a refused handshake and a refused request are logged as 127.0.0.1', async () => {
    const ca = await makeCaDir();
    const log = logLines('ca');
    const server = await startCaServer({
      dir: ca.dir,
      listen: `[${MAPPED}]:0`,
      svidTtlMs: 10 * 60_000,
      workers: 0,
      logger: log.logger,
      metrics: new Metrics(),
    });
    try {
      const port = Number(new URL(server.url).port);
      await notAClientHello(port);
      await waitFor('the refused handshake line', () => log.find({ msg: 'TLS handshake refused' }).length > 0, 10_000);
      expect(log.find({ msg: 'TLS handshake refused' }).map((line) => line.remote)).toEqual(['127.0.0.1']);
      const bundle = (await loadCaMaterial(ca.dir)).bundle.toPem();
      const dispatcher = new Agent({ connect: { ca: bundle, checkServerIdentity: () => undefined } });
      const answer = await request(`https://127.0.0.1:${port}/v1/svid`, {
        method: 'POST',
        body: 'not json',
        headers: { 'content-type': 'application/json' },
        dispatcher,
      });
      await answer.body.dump();
      await dispatcher.close();
      expect(answer.statusCode).toBeGreaterThanOrEqual(400);
      const refused = log.lines.filter((line) => line.path === '/v1/svid');
      expect(refused.map((line) => line.remote)).toEqual(['127.0.0.1']);
    } finally {
      await server.close();
      ca.cleanup();
    }
  });
});
