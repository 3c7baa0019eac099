// A peer cannot exhaust the inbound: a flood of TCP connections that never send a ClientHello and h2 sessions full of
// unfinished uploads are held against a sidecar with small limits, while a legitimate client keeps getting 200; then
// every counted resource returns to its baseline. Real sockets; limits set low so the attack stays small (bounded
// loops, conditions polled, no fixed sleeps asserted on).
import { createServer, type Server } from 'node:http';
import { type ClientHttp2Session, constants as h2constants, type IncomingHttpHeaders } from 'node:http2';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InboundLimits } from '../../src/sidecar/index.js';
import { createLogger } from '../../src/telemetry/index.js';
import { eventually as eventuallyWithin, mtlsH2Session } from '../helpers/raw-app.js';

/** Generous: the suite shares two cores with other workers; the conditions, not the time, are asserted. */
const eventually = (done: () => boolean | Promise<boolean>, timeoutMs = 15_000) => eventuallyWithin(done, timeoutMs);

import { startTestSidecar, type TestSidecar, testConfig } from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';

const TD = 'example.org';

const LIMITS = {
  maxConnections: 400,
  maxHandshakes: 100,
  handshakeTimeoutMs: 1_000,
  maxConnectionsPerPeer: 4,
  maxConcurrentStreams: 10,
  streamIdleTimeoutMs: 1_000,
  sessionIdleTimeoutMs: 1_500,
  appConnections: 8,
} satisfies Partial<InboundLimits>;

/** An app that answers 200 once a request's body has ended, and counts its open connections. */
async function countingApp(): Promise<{ server: Server; port: number; open: () => number; peak: () => number }> {
  let open = 0;
  let peak = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  server.on('connection', (socket: Socket) => {
    open++;
    peak = Math.max(peak, open);
    socket.on('close', () => open--);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, open: () => open, peak: () => peak };
}

const mb = (bytes: number) => Math.round(bytes / 1024 / 1024);

describe('exhaustion of the inbound is bounded', () => {
  let ca: TestCa;
  let app: Awaited<ReturnType<typeof countingApp>>;
  let sidecar: TestSidecar;
  let legit: TestSvid;
  let attacker: TestSvid;
  const logs: Record<string, unknown>[] = [];

  beforeAll(async () => {
    ca = await TestCa.create(TD);
    app = await countingApp();
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n')) if (line !== '') logs.push(JSON.parse(line));
        done();
      },
    });
    sidecar = await startTestSidecar(
      ca,
      ca.idFor('/ns/shop/sa/b'),
      testConfig({ appPort: app.port, appTimeout: '200ms' }),
      {
        logger: createLogger({ level: 'info', destination: sink }),
        inboundLimits: LIMITS,
      },
    );
    legit = await ca.issue({ id: ca.idFor('/ns/shop/sa/legit') });
    attacker = await ca.issue({ id: ca.idFor('/ns/shop/sa/attacker') });
  });
  afterAll(async () => {
    await sidecar?.sidecar.close(0);
    app?.server.closeAllConnections();
    await new Promise((resolve) => app?.server.close(resolve));
  });

  const metric = async (name: string, labels: string): Promise<number> => {
    const text = await sidecar.metrics.registry.getSingleMetricAsString(name);
    const line = text.split('\n').find((l) => l.includes(labels));
    return line === undefined ? 0 : Number(line.split(' ').at(-1));
  };
  const openConnections = () => metric('meshauth_connections_open', 'direction="inbound"');

  function get(session: ClientHttp2Session, path = '/'): Promise<number> {
    return new Promise((resolve) => {
      const stream = session.request({ ':method': 'GET', ':path': path }, { endStream: true });
      let status = 0;
      stream.on('response', (h: IncomingHttpHeaders) => {
        status = Number(h[':status']);
      });
      stream.on('error', () => resolve(-1));
      stream.on('close', () => resolve(status));
      stream.resume();
    });
  }

  it('fail/300 idle TCP connections that never send a ClientHello: capped, timed out, counted, logged rate-limited', async () => {
    const session = await mtlsH2Session(sidecar.sidecar.inboundPort, legit, ca.bundlePem);
    expect(await get(session)).toBe(200);
    const baseline = await openConnections();
    const rssBefore = process.memoryUsage().rss;
    const linesBefore = logs.filter((l) => l.msg === 'TLS handshake refused').length;

    const flood: Socket[] = [];
    for (let i = 0; i < 300; i++) {
      const socket = connect(sidecar.sidecar.inboundPort, '127.0.0.1');
      socket.on('error', () => undefined);
      flood.push(socket);
    }
    // One address: past half the places it meets its own share (max_handshakes_per_source) before the global cap.
    const refused = async () =>
      (await metric('meshauth_connections_rejected_total', 'reason="max_handshakes"')) +
      (await metric('meshauth_connections_rejected_total', 'reason="max_handshakes_per_source"'));
    const timedOut = () => metric('meshauth_connections_rejected_total', 'reason="handshake_timeout"');
    // Only maxHandshakes of them are admitted at a time; the rest are closed at accept.
    expect(await eventually(async () => (await refused()) >= 1), 'refused at accept').toBe(true);
    const during = await openConnections();
    const rssDuring = process.memoryUsage().rss;
    expect(during).toBeLessThanOrEqual(baseline + LIMITS.maxHandshakes);
    // The established session is not affected: the legitimate client keeps getting 200.
    for (let i = 0; i < 5; i++) expect(await get(session)).toBe(200);
    // handshakeTimeout closes the admitted ones: every flood connection ends refused or timed out.
    expect(
      await eventually(() => flood.every((s) => s.destroyed || s.readableEnded)),
      'every flood connection closed by the sidecar',
    ).toBe(true);
    expect(await timedOut()).toBeGreaterThanOrEqual(1);
    for (const socket of flood) socket.destroy();
    expect(await eventually(async () => (await openConnections()) === baseline), 'open gauge back to baseline').toBe(
      true,
    );
    // One log line per interval, the rest counted.
    const lines = logs.filter((l) => l.msg === 'TLS handshake refused').length - linesBefore;
    expect(lines).toBeLessThanOrEqual(2);
    expect(await metric('meshauth_log_lines_suppressed_total', 'event="tls_handshake_failed"')).toBeGreaterThanOrEqual(
      (await timedOut()) - 2,
    );
    // A new legitimate connection is served once the flood is gone.
    const fresh = await mtlsH2Session(sidecar.sidecar.inboundPort, legit, ca.bundlePem);
    expect(await get(fresh)).toBe(200);
    fresh.close();
    session.close();
    expect(await eventually(async () => (await openConnections()) === 0), 'no connection left').toBe(true);
    const rssAfter = process.memoryUsage().rss;
    console.log(
      `idle flood: 300 TCP connections, admitted ≤ ${LIMITS.maxHandshakes}, open during ${during} (baseline ${baseline}); ` +
        `RSS before/during/after ${mb(rssBefore)}/${mb(rssDuring)}/${mb(rssAfter)} MiB`,
    );
  });

  it('ok/one address stalling handshakes cannot take every place: a client from another address is served', async () => {
    const baseline = await openConnections();
    const flood: Socket[] = [];
    for (let i = 0; i < 300; i++) {
      const socket = connect({ port: sidecar.sidecar.inboundPort, host: '127.0.0.1', localAddress: '127.0.0.2' });
      socket.on('error', () => undefined);
      // The start of a ClientHello, then nothing: the handshake holds its place until handshakeTimeout.
      socket.on('connect', () => socket.write(Buffer.from([0x16, 0x03, 0x01])));
      flood.push(socket);
    }
    const perSource = () => metric('meshauth_connections_rejected_total', 'reason="max_handshakes_per_source"');
    expect(await eventually(async () => (await perSource()) >= 1), 'the address refused past its share').toBe(true);
    // At most half the places, then a quarter of them per address: 50 here.
    expect(await openConnections()).toBeLessThanOrEqual(baseline + LIMITS.maxHandshakes / 2);
    const fresh = await mtlsH2Session(sidecar.sidecar.inboundPort, legit, ca.bundlePem);
    expect(await get(fresh)).toBe(200);
    fresh.close();
    for (const socket of flood) socket.destroy();
    expect(await eventually(async () => (await openConnections()) === baseline), 'open gauge back to baseline').toBe(
      true,
    );
  });

  it('fail/h2 sessions full of unfinished uploads: streams, sessions and app connections bounded; legit client served', async () => {
    const baseline = await openConnections();
    const rssBefore = process.memoryUsage().rss;
    const legitSession = await mtlsH2Session(sidecar.sidecar.inboundPort, legit, ca.bundlePem);
    expect(await get(legitSession)).toBe(200);

    // The attacker opens more sessions than its per-peer cap allows, each with more streams than allowed.
    const sessions: ClientHttp2Session[] = [];
    for (let i = 0; i < 6; i++) {
      try {
        sessions.push(await mtlsH2Session(sidecar.sidecar.inboundPort, attacker, ca.bundlePem));
      } catch {
        // refused above the per-peer cap
      }
    }
    // Sessions past the cap complete their handshake and are then closed by the inbound.
    expect(
      await eventually(async () => (await metric('meshauth_connections_rejected_total', 'reason="per_peer"')) >= 2),
    ).toBe(true);
    expect(await eventually(() => sessions.filter((s) => !s.destroyed).length <= LIMITS.maxConnectionsPerPeer)).toBe(
      true,
    );
    const admitted = sessions.filter((s) => !s.destroyed);
    const outcomes: Promise<number | string>[] = [];
    for (const session of admitted) {
      for (let i = 0; i < 15; i++) {
        outcomes.push(
          new Promise((resolve) => {
            const stream = session.request({ ':method': 'POST', ':path': '/upload' });
            stream.write('partial');
            let status = 0;
            stream.on('response', (h: IncomingHttpHeaders) => {
              status = Number(h[':status']);
            });
            stream.on('error', () => undefined);
            stream.on('close', () => resolve(status === 0 ? `rst:${stream.rstCode}` : status));
            stream.resume();
          }),
        );
      }
    }
    expect(
      await eventually(async () => (await metric('meshauth_connections_rejected_total', 'reason="per_peer"')) >= 1),
    ).toBe(true);
    // While the attack holds its streams, the legitimate client keeps getting 200.
    for (let i = 0; i < 5; i++) expect(await get(legitSession)).toBe(200);
    expect(app.peak()).toBeLessThanOrEqual(LIMITS.appConnections);
    const rssDuring = process.memoryUsage().rss;

    // streamIdleTimeout ends every unfinished upload; nothing is left on the app side but the pool.
    const results = await Promise.all(outcomes);
    const timedOut = await metric('meshauth_requests_rejected_total', 'code="MESHAUTH_ERR_REQUEST_TIMEOUT"');
    expect(timedOut).toBeGreaterThanOrEqual(1);
    // Uploads beyond the peer's pool share waited for its own to finish, never reaching the app, up to four times
    // that share (app-forwarder.ts); the others were refused at once with REFUSED_STREAM (never processed, so a peer
    // sidecar may send them again). Every unfinished upload kept, sent or waiting, stalled with its window open
    // before any response head: answered 408 (body_stalled) by the stream idle timeout and counted once, never reset.
    // The first round alone (admitted sessions × maxConcurrentStreams) is over the share and four times it waiting.
    const share = Math.floor(LIMITS.appConnections * 0.75);
    const kept = results.filter((r) => r !== `rst:${h2constants.NGHTTP2_REFUSED_STREAM}`);
    expect(kept.every((r) => r === 408)).toBe(true);
    expect(kept.length).toBe(timedOut);
    const refused = results.length - kept.length;
    expect(refused).toBeGreaterThanOrEqual(admitted.length * LIMITS.maxConcurrentStreams - 5 * share);
    expect(await metric('meshauth_requests_rejected_total', 'code="MESHAUTH_ERR_UPSTREAM_BUSY"')).toBe(refused);
    expect(await metric('meshauth_streams_reset_total', 'reason="stream_idle_timeout"')).toBe(0);
    expect(await metric('meshauth_streams_reset_total', 'reason="client_aborted"')).toBe(0);

    // sessionIdleTimeout closes the now idle sessions (GOAWAY), the legitimate one included.
    expect(await eventually(() => sessions.every((s) => s.closed || s.destroyed), 15_000)).toBe(true);
    expect(await eventually(() => legitSession.closed || legitSession.destroyed, 15_000)).toBe(true);
    expect(await metric('meshauth_connections_rejected_total', 'reason="idle"')).toBeGreaterThanOrEqual(1);
    expect(await eventually(async () => (await openConnections()) === baseline)).toBe(true);
    for (const session of sessions) session.destroy();
    const rssAfter = process.memoryUsage().rss;
    console.log(
      `stream flood: ${admitted.length} of ${sessions.length} attacker sessions admitted (cap ${LIMITS.maxConnectionsPerPeer}), ` +
        `${outcomes.length} streams, app connections peak ${app.peak()} (cap ${LIMITS.appConnections}), ` +
        `results ${JSON.stringify(countBy(results))}; RSS before/during/after ${mb(rssBefore)}/${mb(rssDuring)}/${mb(rssAfter)} MiB`,
    );
  });
});

function countBy(values: readonly (number | string)[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[String(v)] = (out[String(v)] ?? 0) + 1;
  return out;
}

describe('an h2 session that opens no stream', () => {
  let ca: TestCa;
  let app: Awaited<ReturnType<typeof countingApp>>;
  let sidecar: TestSidecar;
  let client: TestSvid;

  beforeAll(async () => {
    ca = await TestCa.create(TD);
    app = await countingApp();
    sidecar = await startTestSidecar(ca, ca.idFor('/ns/shop/sa/b'), testConfig({ appPort: app.port }), {
      inboundLimits: { headersTimeoutMs: 800 },
      hooks: {
        authorize: (request) =>
          request.target.startsWith('/denied')
            ? { allow: false, rule: 'no-denied', reason: 'deny_rule' }
            : { allow: true, rule: 'all', reason: 'allow_rule' },
      },
    });
    client = await ca.issue({ id: ca.idFor('/ns/shop/sa/client') });
  });
  afterAll(async () => {
    await sidecar?.sidecar.close(0);
    app?.server.closeAllConnections();
    await new Promise((resolve) => app?.server.close(resolve));
  });

  const statusOf = (session: ClientHttp2Session, path: string) =>
    new Promise<number>((resolve) => {
      const stream = session.request({ ':method': 'GET', ':path': path }, { endStream: true });
      stream.on('response', (h: IncomingHttpHeaders) => resolve(Number(h[':status'])));
      stream.on('error', () => resolve(-1));
      stream.resume();
    });

  it('fail/is closed after headersTimeout unless a request reached the app, as an HTTP/1.1 connection without a request head is', async () => {
    const idle = await mtlsH2Session(sidecar.sidecar.inboundPort, client, ca.bundlePem);
    const refused = await mtlsH2Session(sidecar.sidecar.inboundPort, client, ca.bundlePem);
    const busy = await mtlsH2Session(sidecar.sidecar.inboundPort, client, ca.bundlePem);
    // A request the policy denies (403) never reaches the app: such requests alone keep no session.
    expect(await statusOf(refused, '/denied')).toBe(403);
    expect(await statusOf(busy, '/')).toBe(200);
    expect(await eventually(() => idle.closed || idle.destroyed), 'the idle session closed').toBe(true);
    expect(await eventually(() => refused.closed || refused.destroyed), 'the refused-only session closed').toBe(true);
    expect(busy.closed || busy.destroyed).toBe(false);
    busy.close();
  });
});
