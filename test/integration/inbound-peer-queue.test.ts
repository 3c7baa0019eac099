// How many requests of one peer identity the inbound holds while the app is busy: its share of the app connections
// in flight (75 % of appConnections, here 3 of 4) and four times that waiting (12); past that its requests are
// refused at once: RST_STREAM(REFUSED_STREAM) on HTTP/2, which a peer sidecar retries, 503 MESHAUTH_ERR_UPSTREAM_BUSY
// with Retry-After on HTTP/1.1. Each refusal is counted, one line is logged per peer per interval, other peers keep
// their own share, and below the bound every request is served once the app answers.
// Found in review: only maxConnectionsPerPeer × maxConcurrentStreams (25,600 with the defaults) bounded the waiting
// requests of one identity, each holding its header list (up to 16 KB from a few wire bytes with HPACK), so one
// peer could park about 110 MB of heap for under 1 MB sent; nothing was refused, counted or logged.
import { createServer, type ServerResponse } from 'node:http';
import { type ClientHttp2Session, type ClientHttp2Stream, constants } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type LogLines, logLines } from '../helpers/log-lines.js';
import { mtlsH2Session } from '../helpers/raw-app.js';
import { rawTlsExchange } from '../helpers/raw-tls.js';
import {
  type SidecarPair,
  startPair,
  startTestSidecar,
  type TestSidecar,
  testConfig,
  viaProxy,
} from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';
import { until } from '../helpers/wait.js';

/** appConnections 4: a peer's share is floor(4 × 0.75) = 3 in flight, and 4 × 3 = 12 may wait. */
const SHARE = 3;
const WAITING = 12;
const BUSY = 'MESHAUTH_ERR_UPSTREAM_BUSY';

interface Sent {
  readonly stream: ClientHttp2Stream;
  status: number;
  closed: boolean;
}

/** Opens `count` GET streams on `session` and records each one's status and close. */
function send(session: ClientHttp2Session, count: number): Sent[] {
  return Array.from({ length: count }, (_, i) => {
    const stream = session.request({ ':method': 'GET', ':path': `/${i}` }, { endStream: true });
    const sent: Sent = { stream, status: 0, closed: false };
    stream.on('response', (headers) => {
      sent.status = Number(headers[':status']);
    });
    stream.on('error', () => undefined);
    stream.on('close', () => {
      sent.closed = true;
    });
    stream.resume();
    return sent;
  });
}

/** Resolves once the sidecar has acknowledged a PING sent after every frame before it (so it has seen those). */
function roundTrip(session: ClientHttp2Session): Promise<void> {
  return new Promise((resolve, reject) => {
    session.ping((error) => (error === null ? resolve() : reject(error)));
  });
}

describe('the inbound queue of one peer for the app', () => {
  let ca: TestCa;
  let sidecar: TestSidecar;
  let log: LogLines;
  let caller: TestSvid;
  let other: TestSvid;
  const server = createServer((_req, res) => held.push(res));
  /** App responses not yet written: the app answers only when the test releases them. */
  const held: ServerResponse[] = [];
  let appRequests = 0;
  const sessions: ClientHttp2Session[] = [];

  const release = (): void => {
    for (const res of held.splice(0)) res.end('ok');
  };
  const rejected = async (code: string): Promise<number> =>
    (await sidecar.metrics.requestsRejected.get()).values.find(
      (v) => v.labels.direction === 'inbound' && v.labels.code === code,
    )?.value ?? 0;
  const suppressed = async (): Promise<number> =>
    (await sidecar.metrics.logLinesSuppressed.get()).values.find((v) => v.labels.event === 'request_rejected')?.value ??
    0;
  const session = async (svid: TestSvid): Promise<ClientHttp2Session> => {
    const opened = await mtlsH2Session(sidecar.sidecar.inboundPort, svid, ca.bundlePem);
    sessions.push(opened);
    return opened;
  };

  beforeAll(async () => {
    ca = await TestCa.create('example.org');
    server.on('request', () => appRequests++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    log = logLines('sidecar', 'info');
    sidecar = await startTestSidecar(
      ca,
      ca.idFor('/ns/shop/sa/b'),
      testConfig({ appPort: (server.address() as AddressInfo).port }),
      { logger: log.logger, inboundLimits: { appConnections: 4, maxConcurrentStreams: 100 } },
    );
    caller = await ca.issue({ id: ca.idFor('/ns/edge/sa/gateway') });
    other = await ca.issue({ id: ca.idFor('/ns/shop/sa/cart') });
  });
  afterEach(async () => {
    // Every exchange of a test ends before the next: answered, then the sessions closed.
    release();
    for (const opened of sessions.splice(0)) opened.close();
    await until('the app answered everything', () => {
      release();
      return held.length === 0;
    });
  });
  afterAll(async () => {
    await sidecar?.sidecar.close(0);
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('ok/its share in flight and the bound waiting: none refused, all answered once the app answers', async () => {
    const requestsBefore = appRequests;
    const h2 = await session(caller);
    const sent = send(h2, SHARE + WAITING);
    await roundTrip(h2); // the sidecar has taken all fifteen: three at the app, twelve waiting
    await until('the share at the app', () => held.length === SHARE);
    // Answered round by round: never more than the share at the app at once, every request served.
    await until(
      'all answered',
      () => {
        expect(held.length).toBeLessThanOrEqual(SHARE);
        release();
        return sent.every((s) => s.closed);
      },
      5_000,
    );
    expect(sent.map((s) => s.status)).toEqual(Array(SHARE + WAITING).fill(200));
    expect(appRequests - requestsBefore).toBe(SHARE + WAITING);
    expect(await rejected(BUSY)).toBe(0);
  });

  it('fail/past the bound on HTTP/2: refused with REFUSED_STREAM, counted, logged once; the rest served', async () => {
    const rejectedBefore = await rejected(BUSY);
    const suppressedBefore = await suppressed();
    const linesBefore = log.find({ code: BUSY }).length;
    const requestsBefore = appRequests;
    // Two sessions of one identity: the bound is the identity's, not a session's.
    const first = await session(caller);
    const second = await session(caller);
    const sent = [...send(first, 20), ...send(second, 20)];
    await roundTrip(first);
    await roundTrip(second);
    const over = 2 * 20 - SHARE - WAITING;
    await until('the requests past the bound refused', () => sent.filter((s) => s.closed).length === over);
    const refused = sent.filter((s) => s.closed);
    expect(refused.map((s) => [s.status, s.stream.rstCode])).toEqual(
      Array(over).fill([0, constants.NGHTTP2_REFUSED_STREAM]),
    );
    // What the sidecar still holds of this peer: its share at the app and the bound waiting, nothing more.
    expect(sent.filter((s) => !s.closed)).toHaveLength(SHARE + WAITING);
    await until('the share at the app', () => held.length === SHARE);
    expect(await rejected(BUSY)).toBe(rejectedBefore + over);
    const lines = log.find({ code: BUSY }).slice(linesBefore);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      event: 'request_rejected',
      direction: 'inbound',
      reason: 'peer_queue_full',
      peer: caller.id,
      status: 503,
      max: WAITING,
    });
    expect(await suppressed()).toBe(suppressedBefore + over - 1);
    // The sessions stay up (a refusal is not the peer's reset), and another identity still has its own share.
    expect(first.closed || second.closed).toBe(false);
    const otherSent = send(await session(other), 1);
    await until('the other peer at the app', () => held.length === SHARE + 1);
    await until(
      'all kept requests answered',
      () => {
        release();
        return [...sent, ...otherSent].every((s) => s.closed);
      },
      5_000,
    );
    expect(sent.filter((s) => s.status === 200)).toHaveLength(SHARE + WAITING);
    expect(otherSent[0]?.status).toBe(200);
    expect(appRequests - requestsBefore).toBe(SHARE + WAITING + 1);
  });

  it('fail/past the bound on HTTP/1.1: 503 MESHAUTH_ERR_UPSTREAM_BUSY with Retry-After, never at the app', async () => {
    const rejectedBefore = await rejected(BUSY);
    const requestsBefore = appRequests;
    const h2 = await session(caller);
    const sent = send(h2, SHARE + WAITING);
    await roundTrip(h2);
    await until('the share at the app', () => held.length === SHARE);
    const answer = await rawTlsExchange(
      sidecar.sidecar.inboundPort,
      caller,
      ca.bundlePem,
      'GET /one-more HTTP/1.1\r\nHost: b.shop\r\n\r\n',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 503 /);
    expect(answer).toMatch(/\r\nretry-after: 1\r\n/i);
    expect(answer).toContain(`"code":"${BUSY}"`);
    expect(await rejected(BUSY)).toBe(rejectedBefore + 1);
    release();
    await until('the queued requests answered', () => {
      release();
      return sent.every((s) => s.closed);
    });
    expect(sent.map((s) => s.status)).toEqual(Array(SHARE + WAITING).fill(200));
    expect(appRequests - requestsBefore).toBe(SHARE + WAITING);
  });
});

// The calling side: a peer sidecar's outbound takes REFUSED_STREAM as "never processed" and sends the request once
// more (here to the same, only endpoint, refused again): the app behind B never sees it, A's app gets a 503.
describe('a peer sidecar refused past the bound', () => {
  let pair: SidecarPair;
  const held: ServerResponse[] = [];

  beforeAll(async () => {
    const ca = await TestCa.create('example.org');
    pair = await startPair(ca, {
      appHandler: (_req, res) => held.push(res),
      inboundLimitsB: { appConnections: 4 },
    });
  });
  afterAll(async () => {
    for (const res of held.splice(0)) res.end('ok');
    await pair?.close();
  });

  it('fail/the outbound retries the refused stream once, and the app behind the bound never sees it', async () => {
    // One more than B keeps of A's identity (three at the app, twelve waiting), all at once through A's one session.
    const settled: { status: number; body: string }[] = [];
    const answers = Array.from({ length: SHARE + WAITING + 1 }, (_, i) =>
      viaProxy(pair.a.sidecar.outboundPort, `http://b.mesh/${i}`).then((answer) => {
        settled.push(answer);
        return answer;
      }),
    );
    await until('the one past the bound answered', () => settled.length === 1 && held.length === SHARE);
    expect(settled[0]?.status).toBe(503);
    expect(JSON.parse(settled[0]?.body ?? '')).toMatchObject({ code: 'MESHAUTH_ERR_PEER_UNAVAILABLE' });
    const retries = (await pair.a.metrics.requestRetries.get()).values.find(
      (v) => v.labels.reason === 'refused_stream',
    );
    expect(retries?.value).toBe(1);
    const refusedAtB = (await pair.b.metrics.requestsRejected.get()).values.find((v) => v.labels.code === BUSY);
    expect(refusedAtB?.value).toBe(2); // the first attempt and the retry
    await until('the kept requests answered', () => {
      for (const res of held.splice(0)) res.end('ok');
      return settled.length === SHARE + WAITING + 1;
    });
    const statuses = (await Promise.all(answers)).map((answer) => answer.status);
    expect(statuses.filter((status) => status === 200)).toHaveLength(SHARE + WAITING);
    expect(pair.appB.arriving).toHaveLength(SHARE + WAITING);
  });
});
