// How many connections the webhook holds, and for how long one that never finishes its TLS handshake keeps its place.
// Before: no cap and Node's 120 s handshake timeout, with nothing counted or logged. 15,000 TCP connections that sent
// no byte, from one client in a few seconds, took `meshauth webhook` from 80 to 290 MB RSS (its Deployment allows
// 320 MiB) and held it there for two minutes; any pod can reach the port, and with failurePolicy Ignore a webhook
// killed for memory admits pods without their sidecar. Now a handshake has 5 s, the connections are capped (one
// client address holds at most half of them), and every refusal is counted and logged.
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { resolveInjectConfig } from '../../src/k8s/index.js';
import { WEBHOOK_HANDSHAKE_TIMEOUT_MS, WebhookServer } from '../../src/k8s/webhook-server.js';
import { Metrics } from '../../src/telemetry/index.js';
import { podCreateReview } from '../helpers/admission-review.js';
import { logLines } from '../helpers/log-lines.js';
import { waitFor } from '../helpers/wait.js';
import { exposedValue, type WebhookCert, writeWebhookCert } from '../helpers/webhook-tls.js';

interface Raw {
  readonly socket: Socket;
  closed: boolean;
}

/** A TCP connection from `from` that sends nothing (no ClientHello); resolves once connected. */
function raw(port: number, from: string): Promise<Raw> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: from });
    const held: Raw = { socket, closed: false };
    socket.once('close', () => {
      held.closed = true;
    });
    socket.on('error', () => {});
    socket.once('connect', () => resolve(held));
  });
}

/** A whole pod review from `from`: its status, or the error that ended it. */
function review(port: number, cert: WebhookCert, from: string): Promise<number | string> {
  return new Promise((resolve) => {
    const body = JSON.stringify(
      podCreateReview({ metadata: { name: 'p' }, spec: { containers: [{ name: 'app', image: 'app:1' }] } }),
    );
    const req = request(
      {
        host: '127.0.0.1',
        localAddress: from,
        port,
        path: '/mutate',
        method: 'POST',
        ca: cert.caPem,
        servername: 'meshauth-webhook.meshauth.svc',
        headers: { 'content-type': 'application/json' },
        agent: false,
      },
      (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.once('error', (error) => resolve(error.message));
    req.end(body);
  });
}

describe('webhook: connections are capped and a handshake has a deadline', () => {
  let dir: string;
  let cert: WebhookCert;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshauth-webhook-conns-'));
    cert = writeWebhookCert(dir);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function webhook(
    extra: { maxConnections?: number; handshakeTimeoutMs?: number } = {},
  ): Promise<{ port: number; metrics: Metrics; log: ReturnType<typeof logLines> }> {
    const metrics = new Metrics();
    const log = logLines('webhook');
    const server = new WebhookServer({
      host: '127.0.0.1',
      port: 0,
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      config: resolveInjectConfig({ trustDomain: 'example.org' }),
      metrics,
      logger: log.logger,
      ...extra,
    });
    const port = await server.listen();
    onTestFinished(() => server.close());
    return { port, metrics, log };
  }

  function teardown(sockets: Raw[]): void {
    onTestFinished(() => {
      for (const s of sockets) s.socket.destroy();
    });
  }

  it('fail/a connection that never sends its ClientHello is closed at the handshake timeout, counted and logged', async () => {
    expect(WEBHOOK_HANDSHAKE_TIMEOUT_MS).toBeLessThanOrEqual(5_000);
    const { port, metrics, log } = await webhook();
    const opened = Date.now();
    const silent = await raw(port, '127.0.0.1');
    teardown([silent]);
    await waitFor('the silent connection closed', () => silent.closed, WEBHOOK_HANDSHAKE_TIMEOUT_MS + 5_000);
    expect(Date.now() - opened).toBeGreaterThanOrEqual(WEBHOOK_HANDSHAKE_TIMEOUT_MS - 100);
    const text = await metrics.exposition();
    expect(
      exposedValue(text, 'meshauth_tls_handshake_failures_total{direction="admin",reason="handshake_timeout"}'),
    ).toBe(1);
    expect(log.find({ event: 'tls_handshake_failed', reason: 'handshake_timeout' })).toHaveLength(1);
    // A client that connects and closes without a byte (a TCP health check, a port scan) began no handshake.
    const scan = await raw(port, '127.0.0.1');
    scan.socket.destroy();
    expect(await review(port, cert, '127.0.0.1')).toBe(200);
    expect(
      exposedValue(
        await metrics.exposition(),
        'meshauth_tls_handshake_failures_total{direction="admin",reason="other"}',
      ),
    ).toBe(0);
  }, 20_000);

  it('fail/one address holds at most half; past the cap an address holding fewer takes the newest place of the one holding the most; each refusal counted', async () => {
    // A small cap, and handshakes that outlast the test, so that the held connections stay until it ends.
    const { port, metrics, log } = await webhook({ maxConnections: 8, handshakeTimeoutMs: 60_000 });
    const held: Raw[] = [];
    teardown(held);
    for (let i = 0; i < 4; i++) held.push(await raw(port, '127.0.0.1'));
    // The fifth from the same address passes its share (half of 8).
    const overShare = await raw(port, '127.0.0.1');
    teardown([overShare]);
    await waitFor('the fifth connection of 127.0.0.1 closed', () => overShare.closed);
    expect(held.some((s) => s.closed)).toBe(false);
    // Another address is still served while the first holds its share.
    expect(await review(port, cert, '127.0.0.2')).toBe(200);

    for (let i = 0; i < 3; i++) held.push(await raw(port, '127.0.0.2'));
    await waitFor('seven connections held', () => held.length === 7 && held.every((s) => !s.closed));
    // Full at eight: 127.0.0.1 holds 4, 127.0.0.2 3, and one more of 127.0.0.2 makes 4 and 4.
    const eighth = await raw(port, '127.0.0.2');
    teardown([eighth]);
    // Two addresses at half each: a third (the API server, say) still gets in, in place of the newest connection of
    // one of them; the other connections stay.
    const third = await raw(port, '127.0.0.3');
    teardown([third]);
    await waitFor('one of the held connections closed for the third address', () =>
      [...held, eighth].some((s) => s.closed),
    );
    expect([...held, eighth].filter((s) => s.closed)).toHaveLength(1);
    expect(third.closed).toBe(false);
    // Now 3 + 4 + 1, or 4 + 3 + 1: a newcomer of the address that gave its place up is refused (under its share,
    // but nobody holds more than it would with it).
    const evicted = held.slice(0, 4).some((s) => s.closed) ? '127.0.0.1' : '127.0.0.2';
    const refused = await raw(port, evicted);
    teardown([refused]);
    await waitFor('a connection refused at the cap', () => refused.closed);

    const text = await metrics.exposition();
    expect(
      exposedValue(text, 'meshauth_connections_rejected_total{direction="admin",reason="max_connections_per_source"}'),
    ).toBe(1);
    expect(exposedValue(text, 'meshauth_connections_rejected_total{direction="admin",reason="max_connections"}')).toBe(
      2,
    );
    const lines = log.find({ event: 'connection_refused' });
    expect(lines.map((l) => l.reason)).toContain('max_connections_per_source');
    // A connection refused for its address never began a handshake: not counted again as a failed one.
    expect(text).not.toMatch(/^meshauth_tls_handshake_failures_total\{[^}]*\} [1-9]/m);

    // Places come back when connections go.
    for (const s of held) s.socket.destroy();
    await waitFor('a review answered once the held connections are gone', async () => {
      return (await review(port, cert, '127.0.0.1')) === 200;
    });
  }, 20_000);
});
