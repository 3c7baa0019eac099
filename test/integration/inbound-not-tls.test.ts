// Plain text sent to the mTLS inbound port: plain-text HTTP from curl and raw bytes (a request line with a body,
// CONNECT, the h2 preface, bytes that are no TLS record) are closed by the server without a byte of HTTP (no 400 page),
// nothing reaches the app, each is counted as meshauth_tls_handshake_failures_total{reason="not_tls"}, and the sidecar
// goes on serving mTLS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  available,
  type InboundServer,
  runCommand,
  startInboundServer,
  type TestApp,
  type TestSidecar,
} from '../helpers/sidecar-harness.js';
import { rawTcpExchange } from '../helpers/tcp-client.js';

const HAVE_CURL = available('curl');
if (!HAVE_CURL) console.warn('inbound-not-tls: curl not on PATH, skipping the curl cases');

describe('plain text to the mTLS inbound port (C17)', () => {
  let app: TestApp;
  let sidecar: TestSidecar;
  let good: { cert: string; key: string };
  let inbound: InboundServer;

  beforeAll(async () => {
    inbound = await startInboundServer();
    ({ app, sidecar, clientFiles: good } = inbound);
  });
  afterAll(async () => {
    await inbound?.close();
  });

  const port = () => sidecar.sidecar.inboundPort;
  const notTls = async () => {
    const text = await sidecar.metrics.registry.getSingleMetricAsString('meshauth_tls_handshake_failures_total');
    const line = text.split('\n').find((l) => l.includes('direction="inbound",reason="not_tls"'));
    return line === undefined ? 0 : Number(line.split(' ').at(-1));
  };
  const stillServing = async () => {
    const result = await runCommand('curl', [
      '-sk',
      '--max-time',
      '5',
      '--cert',
      good.cert,
      '--key',
      good.key,
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `https://127.0.0.1:${port()}/hello`,
    ]);
    expect(result.stdout).toBe('200');
  };

  it.skipIf(!HAVE_CURL)(
    'fail/curl http:// to the mTLS port → empty reply, no HTTP answer, counted not_tls',
    async () => {
      const seen = app.seen.length;
      const before = await notTls();
      const result = await runCommand('curl', ['-sv', '--max-time', '5', `http://127.0.0.1:${port()}/admin`]);
      expect(result.code).toBe(52); // curl: empty reply from server
      expect(result.stdout).toBe('');
      expect(result.stderr).not.toMatch(/^< HTTP\//m);
      await expect.poll(notTls, { timeout: 2_000, interval: 20 }).toBe(before + 1);
      expect(app.seen.length).toBe(seen);
      await stillServing();
    },
  );

  const payloads: Array<[string, string]> = [
    ['fail/GET request line', 'GET /hello HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['fail/POST with a body', 'POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello'],
    ['fail/CONNECT', 'CONNECT app:443 HTTP/1.1\r\nHost: app:443\r\n\r\n'],
    ['fail/plain-text h2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
    ['fail/bytes that are no TLS record', '\u0000\u0001\u0002\u0003HELLO\r\n'],
  ];
  it.each(payloads)('%s → closed without an HTTP byte, counted not_tls', async (_name, text) => {
    const seen = app.seen.length;
    const before = await notTls();
    const reply = await rawTcpExchange(port(), Buffer.from(text, 'latin1'));
    expect(reply.closedByServer).toBe(true);
    expect(reply.bytes.toString('latin1')).not.toContain('HTTP/');
    // Nothing at all, or at most a TLS alert record.
    if (reply.bytes.length > 0) expect(reply.bytes[0]).toBe(0x15);
    await expect.poll(notTls, { timeout: 2_000, interval: 20 }).toBe(before + 1);
    expect(app.seen.length).toBe(seen);
  });

  it.skipIf(!HAVE_CURL)('ok/after 50 plain-text connections the sidecar still serves mTLS', async () => {
    const before = await notTls();
    const replies = await Promise.all(
      Array.from({ length: 50 }, () => rawTcpExchange(port(), Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))),
    );
    expect(replies.every((r) => r.closedByServer && r.bytes.length === 0)).toBe(true);
    await expect.poll(notTls, { timeout: 5_000, interval: 20 }).toBe(before + 50);
    await stillServing();
  });
});
