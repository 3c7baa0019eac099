// Peer chains the sidecar must refuse although every certificate in them is well formed and signed by the trust
// bundle's root: an intermediate that carries a workload's SPIFFE ID (one with a path), an intermediate that is no CA
// (cA=false, or no basicConstraints), a chain with more CAs than a pathLen allows. A real client (curl) is refused at
// the handshake, the app sees nothing, meshauth_tls_handshake_failures_total counts reason="bad_intermediate", and the
// sidecar goes on serving. The outbound refuses a server with such a chain before it writes a request byte.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  available,
  PEER_HOST,
  peerServerTls,
  runCommand,
  startApp,
  startRoutedSidecar,
  startTestSidecar,
  type TestApp,
  type TestSidecar,
  testConfig,
  viaProxy,
} from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid, writeSvidFiles } from '../helpers/test-ca.js';

const HAVE_CURL = available('curl');
if (!HAVE_CURL) console.warn('inbound-peer-chain: curl not on PATH, skipping the curl cases');

/** Defective chains by name, each signed by `ca`'s root (or its real intermediate), for the workload `id`. */
async function defectiveChains(ca: TestCa, id: string): Promise<Record<string, TestSvid>> {
  return {
    // A CA certificate with a workload's ID: X509-SVID §3.2 allows a signing certificate only the trust-domain ID.
    pathId: await ca.issueThrough([{ uris: [ca.idFor('/ns/shop/sa/admin')], pathLength: 0 }], { id }),
    notCa: await ca.issueThrough([{ isCa: false }], { id }),
    noBasicConstraints: await ca.issueThrough([{ isCa: null }], { id }),
    // The real intermediate has pathLen 0: a CA under it exceeds it.
    pathLenIntermediate: await ca.issueThrough([{}], { id, under: 'intermediate' }),
    // Two CAs under the root, whose pathLen is 1.
    pathLenRoot: await ca.issueThrough([{}, {}], { id }),
  };
}

/** A TLS server of the test's own presenting `svid`; counts the application bytes it receives. */
async function peerServer(
  ca: TestCa,
  svid: TestSvid,
): Promise<{ server: TlsServer; port: number; bytes: () => number }> {
  let bytes = 0;
  // SECLEVEL=0: this server stands for a hostile peer, so it must be able to present a key OpenSSL 3.5 (Node 24)
  // would not load at its default level.
  const tls = { ...peerServerTls(svid, ca), ALPNProtocols: ['h2', 'http/1.1'], ciphers: 'DEFAULT@SECLEVEL=0' };
  const server = createTlsServer(tls, (socket) => {
    socket.on('data', (d: Buffer) => {
      bytes += d.length;
    });
    socket.on('error', () => undefined);
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { server, port: address.port, bytes: () => bytes };
}

describe('inbound refuses a client chain with a defective intermediate (C15)', () => {
  let ca: TestCa;
  let app: TestApp;
  let sidecar: TestSidecar;
  let dir: string;
  const files: Record<string, { cert: string; key: string }> = {};

  beforeAll(async () => {
    ca = await TestCa.create('example.org');
    dir = mkdtempSync(join(tmpdir(), 'meshauth-chain-'));
    app = await startApp();
    sidecar = await startTestSidecar(ca, ca.idFor('/ns/shop/sa/server'), testConfig({ appPort: app.port }));
    const id = ca.idFor('/ns/shop/sa/client');
    files.good = writeSvidFiles(dir, 'good', await ca.issue({ id }));
    for (const [name, svid] of Object.entries(await defectiveChains(ca, id))) {
      files[name] = writeSvidFiles(dir, name, svid);
    }
  });
  afterAll(async () => {
    await sidecar?.sidecar.close(0);
    await app?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const curl = (name: string) =>
    runCommand('curl', [
      '-sk',
      '--max-time',
      '5',
      '--cert',
      files[name]?.cert ?? '',
      '--key',
      files[name]?.key ?? '',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `https://127.0.0.1:${sidecar.sidecar.inboundPort}/hello`,
    ]);
  const failures = async (reason: string) => {
    const text = await sidecar.metrics.registry.getSingleMetricAsString('meshauth_tls_handshake_failures_total');
    const line = text.split('\n').find((l) => l.includes(`reason="${reason}"`));
    return line === undefined ? 0 : Number(line.split(' ').at(-1));
  };

  // cA=false ends on OpenSSL's INVALID_PURPOSE, which a leaf without clientAuth gives too: counted bad_purpose.
  // A workload ID on an intermediate is the sidecar's own check on the client's intermediates, which OpenSSL accepts:
  // Node 24's tls.Server reported none of them, the inbound's own handshake (acceptMtls) does on Node 20 and 24.
  const refused: Array<[string, string, string]> = [
    ['fail/intermediate with a workload SPIFFE ID (a path)', 'pathId', 'bad_intermediate'],
    ['fail/intermediate with cA=false', 'notCa', 'bad_purpose'],
    ['fail/intermediate without basicConstraints', 'noBasicConstraints', 'bad_intermediate'],
    ['fail/a CA under the pathLen-0 intermediate', 'pathLenIntermediate', 'bad_intermediate'],
    ['fail/two CAs under the pathLen-1 root', 'pathLenRoot', 'bad_intermediate'],
  ];
  it.skipIf(!HAVE_CURL).each(refused)('%s → refused and counted, app sees nothing', async (_t, name, reason) => {
    const seenBefore = app.seen.length;
    const before = await failures(reason);
    const result = await curl(name);
    expect(result.code).not.toBe(0);
    expect(result.stdout).not.toBe('200');
    await expect.poll(() => failures(reason), { timeout: 2_000, interval: 20 }).toBe(before + 1);
    expect(app.seen.length).toBe(seenBefore);
    // Still serving.
    const good = await curl('good');
    expect(good.stdout).toBe('200');
  });
});

describe('outbound refuses a server chain with a defective intermediate (C15)', () => {
  let ca: TestCa;
  let chains: Record<string, TestSvid>;
  const peerId = () => ca.idFor('/ns/shop/sa/b');

  beforeAll(async () => {
    ca = await TestCa.create('example.org');
    chains = await defectiveChains(ca, peerId());
  });

  const cases: Array<[string, string, number]> = [
    ['fail/server intermediate with a workload SPIFFE ID (a path)', 'pathId', 502],
    ['fail/server intermediate with cA=false', 'notCa', 503],
    ['fail/server intermediate without basicConstraints', 'noBasicConstraints', 503],
    ['fail/server chain past the pathLen-0 intermediate', 'pathLenIntermediate', 503],
  ];
  it.each(cases)('%s → refused before any request byte', async (_t, name, status) => {
    const peer = await peerServer(ca, chains[name] as TestSvid);
    const client = await startRoutedSidecar(ca, peer.port, peerId());
    try {
      const res = await viaProxy(client.sidecar.outboundPort, `http://${PEER_HOST}/x`);
      expect(res.status).toBe(status);
      expect(JSON.parse(res.body).code).toBe(
        status === 502 ? 'MESHAUTH_ERR_PEER_IDENTITY' : 'MESHAUTH_ERR_PEER_UNAVAILABLE',
      );
      expect(peer.bytes()).toBe(0);
    } finally {
      await client.sidecar.close(0);
      await new Promise<void>((resolve) => peer.server.close(() => resolve()));
    }
  });
});

const HAVE_OPENSSL = available('openssl');
if (!HAVE_OPENSSL) console.warn('inbound-peer-chain: openssl not on PATH, skipping the s_client cases');

describe('inbound refuses an oversized client chain and weak client certificates (C19)', () => {
  let ca: TestCa;
  let app: TestApp;
  let sidecar: TestSidecar;
  let dir: string;
  const files: Record<string, { cert: string; key: string }> = {};

  beforeAll(async () => {
    ca = await TestCa.create('example.org');
    dir = mkdtempSync(join(tmpdir(), 'meshauth-chain-c19-'));
    app = await startApp();
    sidecar = await startTestSidecar(ca, ca.idFor('/ns/shop/sa/server'), testConfig({ appPort: app.port }));
    const id = ca.idFor('/ns/shop/sa/client');
    files.good = writeSvidFiles(dir, 'good', await ca.issue({ id }));
    // 20 intermediates of about 10 KB each: a Certificate message of about 200 KB.
    files.huge = writeSvidFiles(
      dir,
      'huge',
      await ca.issueThrough(
        Array.from({ length: 20 }, () => ({ paddingBytes: 10_000 })),
        { id },
      ),
    );
    files.deep = writeSvidFiles(
      dir,
      'deep',
      await ca.issueThrough(
        Array.from({ length: 20 }, () => ({})),
        { id },
      ),
    );
    files.rsa1024 = writeSvidFiles(dir, 'rsa1024', await ca.issue({ id, rsaBits: 1024 }));
    files.sha1 = writeSvidFiles(dir, 'sha1', await ca.issue({ id, signatureHash: 'SHA-1' }));
  }, 60_000);
  afterAll(async () => {
    await sidecar?.sidecar.close(0);
    await app?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const port = () => sidecar.sidecar.inboundPort;
  const curl = (name: string) =>
    runCommand('curl', [
      '-sk',
      '--max-time',
      '5',
      '--cert',
      files[name]?.cert ?? '',
      '--key',
      files[name]?.key ?? '',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `https://127.0.0.1:${port()}/hello`,
    ]);
  /** openssl s_client at security level 0, so that it sends a certificate curl would not load, then one request. */
  const weakClient = (name: string) =>
    runCommand(
      'openssl',
      [
        's_client',
        '-connect',
        `127.0.0.1:${port()}`,
        '-cipher',
        'DEFAULT@SECLEVEL=0',
        '-cert',
        files[name]?.cert ?? '',
        '-cert_chain',
        files[name]?.cert ?? '',
        '-key',
        files[name]?.key ?? '',
        '-alpn',
        'http/1.1',
        '-quiet',
      ],
      { input: 'GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' },
    );
  const failures = async () => {
    const text = await sidecar.metrics.registry.getSingleMetricAsString('meshauth_tls_handshake_failures_total');
    const counts: Record<string, number> = {};
    for (const line of text.split('\n')) {
      const reason = /reason="([^"]+)"/.exec(line)?.[1];
      if (reason !== undefined && !line.startsWith('#')) counts[reason] = Number(line.split(' ').at(-1));
    }
    return counts;
  };
  const stillServing = async () => expect((await curl('good')).stdout).toBe('200');

  it.skipIf(!HAVE_CURL)('fail/20 intermediates of ~200 KB → refused, counted policy, app sees nothing', async () => {
    const seenBefore = app.seen.length;
    const before = (await failures()).policy ?? 0;
    const result = await curl('huge');
    expect(result.stdout).not.toBe('200');
    await expect.poll(async () => (await failures()).policy ?? 0, { timeout: 2_000, interval: 20 }).toBe(before + 1);
    expect(app.seen.length).toBe(seenBefore);
    await stillServing();
  });

  it.skipIf(!HAVE_CURL)(
    'fail/20 small intermediates → refused by the pathLen constraints, app sees nothing',
    async () => {
      const seenBefore = app.seen.length;
      const before = (await failures()).bad_intermediate ?? 0;
      const result = await curl('deep');
      expect(result.stdout).not.toBe('200');
      await expect
        .poll(async () => (await failures()).bad_intermediate ?? 0, { timeout: 2_000, interval: 20 })
        .toBe(before + 1);
      expect(app.seen.length).toBe(seenBefore);
      await stillServing();
    },
  );

  /** The two reasons a certificate below OpenSSL's security level is counted under, by Node version (below). */
  const policyOrOther = async () => {
    const counts = await failures();
    return (counts.policy ?? 0) + (counts.other ?? 0);
  };

  // Node 20 completes the handshake (security level 1) and the sidecar's key check counts policy; Node 24's OpenSSL
  // 3.5 refuses the key in the handshake and Node reports only a hang-up (UNSPECIFIED), counted as other.
  it.skipIf(!HAVE_OPENSSL)('fail/RSA-1024 client leaf → refused and counted, app sees nothing', async () => {
    const seenBefore = app.seen.length;
    const before = await policyOrOther();
    const result = await weakClient('rsa1024');
    expect(result.stdout).not.toContain('HTTP/1.1 200');
    await expect.poll(policyOrOther, { timeout: 2_000, interval: 20 }).toBe(before + 1);
    expect(app.seen.length).toBe(seenBefore);
    await stillServing();
  });

  // OpenSSL refuses it in the chain verification (security level 1 forbids SHA-1 signatures); Node 20 reports that
  // verify error as UNSPECIFIED (its name table lacks CA_MD_TOO_WEAK), so the reason is policy or other by version.
  it.skipIf(!HAVE_OPENSSL)('fail/SHA-1-signed client leaf → refused and counted, app sees nothing', async () => {
    const seenBefore = app.seen.length;
    const before = await policyOrOther();
    const result = await weakClient('sha1');
    expect(result.stdout).not.toContain('HTTP/1.1 200');
    await expect.poll(policyOrOther, { timeout: 2_000, interval: 20 }).toBe(before + 1);
    expect(app.seen.length).toBe(seenBefore);
    await stillServing();
  });

  it('fail/outbound: a server with an RSA-1024 leaf → refused before any request byte', async () => {
    const peerId = ca.idFor('/ns/shop/sa/b');
    const peer = await peerServer(ca, await ca.issue({ id: peerId, rsaBits: 1024 }));
    const client = await startRoutedSidecar(ca, peer.port, peerId);
    try {
      const res = await viaProxy(client.sidecar.outboundPort, `http://${PEER_HOST}/x`);
      // Node 20 (OpenSSL 3.0, security level 1) completes the handshake and the sidecar's own key check answers 502;
      // Node 24 (OpenSSL 3.5, level 2) refuses the key in the handshake: 503, the peer unavailable.
      const expected = res.status === 502 ? 'MESHAUTH_ERR_PEER_IDENTITY' : 'MESHAUTH_ERR_PEER_UNAVAILABLE';
      expect([502, 503]).toContain(res.status);
      expect(JSON.parse(res.body).code).toBe(expected);
      expect(peer.bytes()).toBe(0);
    } finally {
      await client.sidecar.close(0);
      await new Promise<void>((resolve) => peer.server.close(() => resolve()));
    }
  });
});
