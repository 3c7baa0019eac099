// A caller that goes away while an async stage is still running (the end-user authenticator waiting on the issuer's
// JWKS): when that stage settles, the exchange is over. No later stage runs (no authz decision, nothing sent to the
// app), no per-peer app slot is taken (one that was would never be given back: its 'close' already fired), and a
// failure is not reported as a rejection nobody received. Then a request of that same peer is still served.
import { createServer, type ServerResponse } from 'node:http';
import { constants, type IncomingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { endUserToken, jwksText, type SigningKey, signingKey } from '../helpers/end-user-keys.js';
import { eventually, mtlsH2Session } from '../helpers/raw-app.js';
import { rawH2Client } from '../helpers/raw-h2-client.js';
import { startApp, startTestSidecar, type TestApp, testConfig } from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';

const AUDIENCE = 'shop';
/** Generous: the suite shares cores with other workers; conditions, not times, are asserted. */
const WAIT_MS = 10_000;
/** appConnections 2 → a peer's share is one app request in flight (APP_POOL_PEER_SHARE). */
const APP_CONNECTIONS = 2;
const ABANDONED = 3;

const teardown: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (teardown.length > 0) await teardown.pop()?.();
});

/** A JWKS endpoint that holds every request until `release` answers them all (`ok`: the keys, else a 500). */
async function gatedJwks(key: SigningKey) {
  const held: ServerResponse[] = [];
  const server = createServer((_req, res) => held.push(res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  teardown.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    held: () => held.length,
    release(ok: boolean): void {
      for (const res of held.splice(0)) {
        if (ok) res.writeHead(200, { 'content-type': 'application/json' }).end(jwksText(key));
        else res.writeHead(500).end('internal error');
      }
    },
  };
}

async function setUp() {
  const ca = await TestCa.create('example.org');
  const app: TestApp = await startApp();
  teardown.push(() => app.close());
  const key = await signingKey('2026-12');
  const jwks = await gatedJwks(key);
  const b = await startTestSidecar(
    ca,
    ca.idFor('/ns/shop/sa/b'),
    testConfig({ appPort: app.port, endUserIssuer: { url: jwks.url, audience: AUDIENCE } }),
    { inboundLimits: { appConnections: APP_CONNECTIONS } },
  );
  teardown.push(() => b.sidecar.close(0));
  const caller = await ca.issue({ id: ca.idFor('/ns/shop/sa/a') });
  const token = await endUserToken(key, jwks.url, AUDIENCE, 'alice', 3600);
  // The sidecar's start-up JWKS fetch is held: every token below waits on it.
  expect(await eventually(() => jwks.held() === 1, WAIT_MS)).toBe(true);
  /** The sum of `name`'s samples whose labels contain `label`. */
  const counted = async (name: string, label = ''): Promise<number> => {
    const text = await b.metrics.registry.getSingleMetricAsString(name);
    let sum = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith('#') && line !== '' && line.includes(label)) sum += Number(line.split(' ').pop());
    }
    return sum;
  };
  return { ca, app, jwks, b, caller, token, counted };
}

type SetUp = Awaited<ReturnType<typeof setUp>>;

/** h2: `ABANDONED` requests with the token, each reset by the caller (RST_STREAM CANCEL) before the JWKS answers. */
async function abandonH2({ b, ca, caller, token }: SetUp): Promise<void> {
  const client = await rawH2Client(b.sidecar.inboundPort, ca.bundlePem, caller);
  teardown.push(() => client.close());
  for (let i = 0; i < ABANDONED; i++) {
    const id = 1 + 2 * i;
    client.headers(
      id,
      [
        [':method', 'GET'],
        [':scheme', 'https'],
        [':path', '/abandoned'],
        [':authority', 'b.mesh'],
        ['authorization', `Bearer ${token}`],
      ],
      true,
    );
    client.reset(id, constants.NGHTTP2_CANCEL);
  }
  // A request refused at once (bad method) after the resets: once its answer is back, the resets were read.
  const probe = 1 + 2 * ABANDONED;
  client.headers(
    probe,
    [
      [':method', 'CONNECT'],
      [':authority', 'b.mesh'],
    ],
    true,
  );
  expect(await eventually(() => client.received.some((f) => f.stream === probe), WAIT_MS)).toBe(true);
}

/**
 * HTTP/1.1: `ABANDONED` connections that send a request with the token and disconnect before the JWKS answers. Each
 * request asks `Expect: 100-continue`: Node's server writes the 100 Continue as it hands the head to the sidecar,
 * whose stages then run up to the authenticator waiting on the held JWKS (no frame says so otherwise). A request that
 * never entered the stages would let the test pass without the fix.
 */
async function abandonH1({ b, ca, caller, token, counted }: SetUp): Promise<void> {
  const openInbound = () => counted('meshauth_connections_open', 'direction="inbound"');
  for (let i = 0; i < ABANDONED; i++) {
    const socket = connect({
      host: '127.0.0.1',
      port: b.sidecar.inboundPort,
      ca: [ca.bundlePem],
      cert: caller.chainPem,
      key: caller.keyPem,
      ALPNProtocols: ['http/1.1'],
      checkServerIdentity: () => undefined,
    });
    socket.on('error', () => undefined);
    teardown.push(() => void socket.destroy());
    let reply = '';
    socket.on('data', (d: Buffer) => {
      reply += d.toString('latin1');
    });
    await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
    socket.write(
      `GET /abandoned HTTP/1.1\r\nhost: b.mesh\r\nexpect: 100-continue\r\nauthorization: Bearer ${token}\r\n\r\n`,
    );
    expect(await eventually(() => reply.startsWith('HTTP/1.1 100 Continue\r\n'), WAIT_MS), 'head in the stages').toBe(
      true,
    );
    socket.destroy();
    await new Promise((resolve) => socket.once('close', resolve));
    // The sidecar saw the disconnect (its side of the connection closed) before the test releases the JWKS.
    expect(await eventually(async () => (await openInbound()) === 0, WAIT_MS), 'the caller gone').toBe(true);
    expect(reply, 'nothing but the 100 Continue').toBe('HTTP/1.1 100 Continue\r\n\r\n');
  }
}

/** A GET with the token on a fresh h2 connection of `caller`: its status, 0 when no answer came within WAIT_MS. */
async function served(port: number, caPem: string, caller: TestSvid, token: string): Promise<number> {
  const session = await mtlsH2Session(port, caller, caPem);
  teardown.push(() => void session.destroy());
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(0), WAIT_MS);
    const stream = session.request(
      { ':method': 'GET', ':path': '/served', ':authority': 'b.mesh', authorization: `Bearer ${token}` },
      { endStream: true },
    );
    stream.on('response', (h: IncomingHttpHeaders) => {
      clearTimeout(timer);
      resolve(Number(h[':status']));
      stream.resume();
    });
    stream.on('error', () => undefined);
  });
}

describe('the caller goes away while the end-user authenticator waits on the JWKS', () => {
  for (const [name, abandon] of [
    ['h2 RST_STREAM', abandonH2],
    ['HTTP/1.1 disconnect', abandonH1],
  ] as const) {
    it(`ok/${name}: later stages do not run, no app slot is kept, the peer is still served`, async () => {
      const setup = await setUp();
      const { jwks, b, app, ca, caller, token, counted } = setup;
      await abandon(setup);
      const rejectedBefore = await counted('meshauth_requests_rejected_total');
      jwks.release(true);
      // More abandoned requests than the peer's share: each would have kept a slot.
      expect(await served(b.sidecar.inboundPort, ca.bundlePem, caller, token)).toBe(200);
      expect(app.seen.map((r) => r.url)).toEqual(['/served']);
      expect(await counted('meshauth_requests_total', 'code="200"')).toBe(1);
      expect(await counted('meshauth_requests_rejected_total')).toBe(rejectedBefore);
    });

    it(`fail/${name}: the JWKS fetch fails after the caller left: no rejection is reported for it`, async () => {
      const setup = await setUp();
      const { jwks, b, ca, caller, token, counted } = setup;
      await abandon(setup);
      const rejectedBefore = await counted('meshauth_requests_rejected_total');
      jwks.release(false);
      // The next request of that peer is answered (jwks_unavailable): the abandoned ones settled before it.
      expect(await served(b.sidecar.inboundPort, ca.bundlePem, caller, token)).toBe(401);
      expect(await counted('meshauth_requests_rejected_total')).toBe(rejectedBefore + 1);
    });
  }
});
