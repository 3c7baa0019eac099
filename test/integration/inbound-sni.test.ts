// The inbound's SNI handling: one server context whatever the client names. Without SNI or with a name that is not the
// server's, a client still needs its SVID (no certificate: refused at the handshake, counted no_client_cert) and with
// it is served as the identity in its certificate; an SNI over the 255 bytes a host name may have (up to 64 KB, in a
// hand-written ClientHello) is refused cleanly, and the sidecar goes on serving.
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
import type { TestCa } from '../helpers/test-ca.js';
import { clientHelloRecords } from '../helpers/tls-client-hello.js';

const HAVE_OPENSSL = available('openssl');
if (!HAVE_OPENSSL) console.warn('inbound-sni: openssl not on PATH, skipping the s_client cases');

describe('inbound SNI (T07)', () => {
  let ca: TestCa;
  let app: TestApp;
  let sidecar: TestSidecar;
  let good: { cert: string; key: string };
  let inbound: InboundServer;
  const clientId = () => ca.idFor('/ns/shop/sa/client');

  beforeAll(async () => {
    inbound = await startInboundServer();
    ({ ca, app, sidecar, clientFiles: good } = inbound);
  });
  afterAll(async () => {
    await inbound?.close();
  });

  const port = () => sidecar.sidecar.inboundPort;
  const failures = async (reason?: string) => {
    const text = await sidecar.metrics.registry.getSingleMetricAsString('meshauth_tls_handshake_failures_total');
    return text
      .split('\n')
      .filter((l) => !l.startsWith('#') && l.includes('direction="inbound"'))
      .filter((l) => reason === undefined || l.includes(`reason="${reason}"`))
      .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
  };
  /** openssl s_client with the given SNI arguments, with or without the client SVID, sending one request. */
  const sClient = (sni: string[], withCert: boolean) =>
    runCommand(
      'openssl',
      [
        's_client',
        '-connect',
        `127.0.0.1:${port()}`,
        ...sni,
        ...(withCert ? ['-cert', good.cert, '-cert_chain', good.cert, '-key', good.key] : []),
        '-alpn',
        'http/1.1',
        '-quiet',
      ],
      { input: 'GET /hello HTTP/1.1\r\nHost: server\r\nConnection: close\r\n\r\n' },
    );

  const NO_SNI = ['-noservername'];
  const OTHER_SNI = ['-servername', 'admin.other.example'];
  const withoutCert: Array<[string, string[]]> = [
    ['fail/no SNI, no client certificate', NO_SNI],
    ['fail/an SNI naming another host, no client certificate', OTHER_SNI],
  ];
  const withCert: Array<[string, string[]]> = [
    ['ok/no SNI, with the client SVID', NO_SNI],
    ['ok/an SNI naming another host, with the client SVID', OTHER_SNI],
  ];

  it.skipIf(!HAVE_OPENSSL).each(withoutCert)('%s → refused, app sees nothing', async (_n, sni) => {
    const seen = app.seen.length;
    const before = await failures('no_client_cert');
    const result = await sClient(sni, false);
    expect(result.stdout).not.toContain('HTTP/1.1');
    await expect.poll(() => failures('no_client_cert'), { timeout: 2_000, interval: 20 }).toBe(before + 1);
    expect(app.seen.length).toBe(seen);
  });

  it.skipIf(!HAVE_OPENSSL).each(withCert)('%s → served as that SVID’s ID', async (_n, sni) => {
    const seen = app.seen.length;
    const result = await sClient(sni, true);
    expect(result.stdout).toContain('HTTP/1.1 200');
    expect(app.seen.length).toBe(seen + 1);
    expect(app.seen.at(-1)?.headers['x-forwarded-client-cert']).toContain(`URI=${clientId()}`);
  });

  const oversize: Array<[string, number]> = [
    ['fail/a 300-byte SNI', 300],
    ['fail/a 64 KB SNI', 65_000],
  ];
  it.each(oversize)('%s → refused at the ClientHello, closed, counted; still serving', async (_n, length) => {
    const seen = app.seen.length;
    const before = await failures();
    const reply = await rawTcpExchange(port(), clientHelloRecords(`${'a'.repeat(length - 8)}.example`));
    expect(reply.closedByServer).toBe(true);
    // No ServerHello: nothing, or a TLS alert record.
    if (reply.bytes.length > 0) expect(reply.bytes[0]).toBe(0x15);
    await expect.poll(() => failures(), { timeout: 2_000, interval: 20 }).toBe(before + 1);
    expect(app.seen.length).toBe(seen);
    if (HAVE_OPENSSL) expect((await sClient(['-noservername'], true)).stdout).toContain('HTTP/1.1 200');
  });

  it('ok/the hand-written ClientHello with a short SNI gets a ServerHello (the refusals above are the size)', async () => {
    const reply = await rawTcpExchange(port(), clientHelloRecords('server.example'), true);
    expect(reply.bytes[0]).toBe(0x16); // a handshake record: the ServerHello
  });
});
