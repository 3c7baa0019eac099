// An answer a route's peer cuts after its head but before any body byte, at the edge gateway. node:http sends a
// written head only with the first body byte or the end, so an HTTP/1.1 browser got no status line at all (node:
// "socket hang up", curl: "Empty reply from server") while meshauth_gateway_requests_total and
// meshauth_requests_total counted the peer's 200, and the cut a peer_response_truncated reset beside it. For an
// HTTP/1.1 browser the gateway now holds the peer's head until the first body byte or the end, over both peer
// protocols: a cut before it is answered 502 MESHAUTH_ERR_UPSTREAM_PROTOCOL (504 when the peer went silent), counted
// as that, and the peer's answered request is not sent again. An HTTP/2 browser still gets the head at once (node:
// http2's compat response sends HEADERS at writeHead, and a streaming answer's first event may come much later), so
// a cut there resets its stream after the 200 head, never ends it: pinned below.
import { request as httpsRequest } from 'node:https';
import {
  type AddressInfo,
  createServer as createNetServer,
  connect as netConnect,
  type Server,
  type Socket,
} from 'node:net';
import { TLSSocket, type TlsOptions } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';
import { rawH2Client, rstCodeOf, statusOf } from '../helpers/raw-h2-client.js';
import { type RawH2Peer, type RawStream, startRawH2Peer } from '../helpers/raw-h2-peer.js';
import { eachWholeRequest } from '../helpers/raw-requests.js';
import { peerServerTls } from '../helpers/sidecar-harness.js';
import { waitFor } from '../helpers/wait.js';

const H2_PEER_ID = 'spiffe://example.org/ns/cut/sa/h2';
const H1_PEER_ID = 'spiffe://example.org/ns/cut/sa/h1';
const HEADERS = 0x1;
const DATA = 0x0;
const RST_STREAM = 0x3;
const END_STREAM = 0x1;
const INTERNAL_ERROR = 0x2;

/** One request as the HTTP/1.1 peer read it, with its TLS socket and the TCP socket under it (to reset). */
interface PeerRequest {
  readonly head: string;
  readonly tls: TLSSocket;
  readonly tcp: Socket;
}

/** What an HTTP/1.1 browser (node:https) got: a status and body, whether the body was cut, or no answer at all. */
interface BrowserAnswer {
  status?: number | undefined;
  contentType?: string | undefined;
  body: string;
  cut: boolean;
  error?: string;
}

/** What an HTTP/2 browser got on its stream: the head's status, whether the stream ended, its reset code. */
interface H2BrowserAnswer {
  readonly status: number | undefined;
  readonly ended: boolean;
  readonly rstCode: number | undefined;
}

describe('gateway: a peer cuts its answer after the head, before any body byte', () => {
  let mesh: GatewayMesh;
  let port: number;
  // The routes name the peers' ports before the mesh's CA can issue their SVIDs: the HTTP/2 peer sits behind a TCP
  // relay bound first, the HTTP/1.1 peer's TLS options are set once the CA exists.
  let relay: Server;
  let h2Peer: RawH2Peer | undefined;
  let h1Peer: Server;
  let h1Tls: TlsOptions | undefined;
  const sockets = new Set<Socket>();
  const h1Requests: PeerRequest[] = [];
  let h2Script: (stream: RawStream) => void = () => undefined;
  let h1Script: (request: PeerRequest) => void = () => undefined;

  beforeAll(async () => {
    relay = createNetServer((inbound) => {
      const outbound = netConnect((h2Peer as RawH2Peer).port, '127.0.0.1');
      for (const socket of [inbound, outbound]) {
        sockets.add(socket);
        socket.on('error', () => undefined);
        socket.once('close', () => sockets.delete(socket));
      }
      inbound.pipe(outbound).pipe(inbound);
    });
    // TLS over a TCP socket of the test's own, so the test can reset that socket (a TLS socket cannot send a RST).
    h1Peer = createNetServer((tcp) => {
      sockets.add(tcp);
      tcp.on('error', () => undefined);
      tcp.once('close', () => sockets.delete(tcp));
      const tls = new TLSSocket(tcp, { ...h1Tls, isServer: true });
      tls.on('error', () => undefined);
      eachWholeRequest(tls, (head) => {
        const request = { head, tls, tcp };
        h1Requests.push(request);
        h1Script(request);
      });
    });
    for (const server of [relay, h1Peer]) {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    }
    const route = (name: string, server: Server, id: string) => ({
      name,
      match: { host: '127.0.0.1', pathPrefix: `/${name}` },
      to: { address: `127.0.0.1:${(server.address() as AddressInfo).port}`, ids: [id] },
      login: 'none',
    });
    mesh = await startGatewayMesh({
      gateway: (base) => ({
        ...base,
        limits: { upstreamTimeout: '2s' },
        routes: [route('h2peer', relay, H2_PEER_ID), route('h1peer', h1Peer, H1_PEER_ID), ...(base.routes as [])],
      }),
    });
    port = Number(new URL(mesh.origin).port);
    h2Peer = await startRawH2Peer(await mesh.ca.issue({ id: H2_PEER_ID }), mesh.ca.bundlePem, {
      onStream: (stream) => h2Script(stream),
    });
    h1Tls = { ...peerServerTls(await mesh.ca.issue({ id: H1_PEER_ID }), mesh.ca), ALPNProtocols: ['http/1.1'] };
  });
  afterAll(async () => {
    await mesh?.close();
    for (const socket of sockets) socket.destroy();
    await h2Peer?.close();
    for (const server of [relay, h1Peer]) await new Promise((resolve) => server?.close(resolve));
  });

  /** One request as a browser's HTTP/1.1 client sends it (a navigation; POST with a 3-byte body). */
  function h1Browser(method: 'GET' | 'POST' | 'HEAD', path: string): Promise<BrowserAnswer> {
    return new Promise((resolve) => {
      const seen: BrowserAnswer = { body: '', cut: false };
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port,
          method,
          path,
          ca: mesh.files.caPem,
          agent: false,
          headers: { accept: 'text/html', ...(method === 'POST' ? { 'content-length': '3' } : {}) },
        },
        (res) => {
          seen.status = res.statusCode;
          seen.contentType = res.headers['content-type'];
          res.on('data', (chunk: Buffer) => {
            seen.body += chunk.toString();
          });
          res.on('error', () => undefined); // a cut body: 'close' with the message incomplete says so
          res.on('close', () => {
            seen.cut = !res.complete;
            resolve(seen);
          });
        },
      );
      req.on('error', (error: Error) => {
        seen.error = error.message;
        resolve(seen);
      });
      req.end(method === 'POST' ? 'x=1' : undefined);
    });
  }

  /** A GET on stream 1 of a raw HTTP/2 client: resolves once the stream ended or was reset. */
  async function h2Browser(path: string, onHead?: () => void): Promise<H2BrowserAnswer> {
    const c = await rawH2Client(port, mesh.files.caPem);
    try {
      c.headers(
        1,
        [
          [':method', 'GET'],
          [':scheme', 'https'],
          [':authority', `127.0.0.1:${port}`],
          [':path', path],
        ],
        true,
      );
      const mine = () => c.received.filter((f) => f.stream === 1);
      if (onHead !== undefined) {
        await waitFor('the answer head', () => mine().some((f) => f.type === HEADERS));
        onHead();
      }
      await waitFor('the stream to end or be reset', () =>
        mine().some((f) => f.type === RST_STREAM || ((f.type === DATA || f.type === HEADERS) && f.flags & END_STREAM)),
      );
      const head = mine().find((f) => f.type === HEADERS);
      const reset = mine().find((f) => f.type === RST_STREAM);
      return {
        status: head === undefined ? undefined : statusOf(head),
        ended: mine().some((f) => (f.type === DATA || f.type === HEADERS) && (f.flags & END_STREAM) !== 0),
        rstCode: reset === undefined ? undefined : rstCodeOf(reset),
      };
    } finally {
      c.close();
    }
  }

  async function edgeAnswers(route: string, code: string): Promise<number> {
    const { values } = await mesh.metrics.gatewayRequests.get();
    return values.find((v) => v.labels.route === route && v.labels.code === code)?.value ?? 0;
  }
  async function outbound(code: string): Promise<number> {
    const { values } = await mesh.metrics.requests.get();
    return values
      .filter((v) => v.labels.direction === 'outbound' && v.labels.code === code)
      .reduce((sum, v) => sum + v.value, 0);
  }
  async function truncated(): Promise<number> {
    const { values } = await mesh.metrics.streamsReset.get();
    return (
      values.find((v) => v.labels.direction === 'outbound' && v.labels.reason === 'peer_response_truncated')?.value ?? 0
    );
  }
  async function rejected(code: string): Promise<number> {
    const { values } = await mesh.metrics.requestsRejected.get();
    return values.find((v) => v.labels.direction === 'outbound' && v.labels.code === code)?.value ?? 0;
  }
  const peerRequests = (route: string) => (route === 'h2peer' ? (h2Peer as RawH2Peer).streams : h1Requests).length;
  async function snapshot(route: string) {
    return {
      edgeOk: await edgeAnswers(route, '200'),
      edgeBad: await edgeAnswers(route, '502'),
      edgeLate: await edgeAnswers(route, '504'),
      ok: await outbound('200'),
      bad: await outbound('502'),
      late: await outbound('504'),
      cut: await truncated(),
      protocol: await rejected('MESHAUTH_ERR_UPSTREAM_PROTOCOL'),
      timeout: await rejected('MESHAUTH_ERR_UPSTREAM_TIMEOUT'),
      requests: peerRequests(route),
    };
  }

  const H1_HEAD = 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 10\r\n\r\n';
  const H1_CHUNKED = 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n';
  /** The HTTP/2 peer's 200 head, no END_STREAM. */
  const h2Head = (stream: RawStream) => stream.respond(200, { 'content-type': 'text/plain' });

  type Cut = [string, 'h2peer' | 'h1peer', 'GET' | 'POST', () => void];
  const cuts: Cut[] = [
    [
      'HTTP/2 peer: HEADERS(200), then RST_STREAM(INTERNAL_ERROR)',
      'h2peer',
      'GET',
      () => {
        h2Script = (s) => {
          h2Head(s);
          s.reset(INTERNAL_ERROR);
        };
      },
    ],
    [
      'HTTP/2 peer, POST: HEADERS(200), then RST_STREAM(INTERNAL_ERROR)',
      'h2peer',
      'POST',
      () => {
        h2Script = (s) => {
          h2Head(s);
          s.reset(INTERNAL_ERROR);
        };
      },
    ],
    [
      'HTTP/2 peer: HEADERS(200), then its connection ends',
      'h2peer',
      'GET',
      () => {
        h2Script = (s) => {
          h2Head(s);
          s.connection.socket.end();
        };
      },
    ],
    [
      'HTTP/1.1 peer: the head, then the connection closes',
      'h1peer',
      'GET',
      () => (h1Script = (r) => r.tls.end(H1_HEAD)),
    ],
    [
      'HTTP/1.1 peer, POST: the head, then the connection closes',
      'h1peer',
      'POST',
      () => (h1Script = (r) => r.tls.end(H1_HEAD)),
    ],
    [
      'HTTP/1.1 peer: the head, then the connection is reset',
      'h1peer',
      'GET',
      () => (h1Script = (r) => r.tls.write(H1_HEAD, () => setImmediate(() => r.tcp.resetAndDestroy()))),
    ],
    [
      'HTTP/1.1 peer: a chunked head, then a chunk size that is no number',
      'h1peer',
      'GET',
      () => (h1Script = (r) => r.tls.write(`${H1_CHUNKED}zz\r\n`)),
    ],
  ];

  it.each(cuts)(
    'fail/HTTP/1.1 browser, %s → 502 UPSTREAM_PROTOCOL, counted as 502 not 200, not sent again',
    async (_name, route, method, script) => {
      script();
      const before = await snapshot(route);
      const got = await h1Browser(method, `/${route}/cut-${method}`);
      expect(got.error).toBeUndefined(); // before: "socket hang up", no status line at all
      expect(got).toMatchObject({ status: 502, contentType: 'application/json', cut: false });
      expect(JSON.parse(got.body)).toMatchObject({ code: 'MESHAUTH_ERR_UPSTREAM_PROTOCOL' });
      const after = await snapshot(route);
      expect(after).toEqual({
        ...before,
        edgeBad: before.edgeBad + 1,
        bad: before.bad + 1,
        protocol: before.protocol + 1,
        requests: before.requests + 1, // the peer answered: not sent again, also not a GET
      });
    },
  );

  it.each([
    ['HTTP/2 peer', 'h2peer', () => (h2Script = h2Head)],
    ['HTTP/1.1 peer', 'h1peer', () => (h1Script = (r: PeerRequest) => r.tls.write(H1_HEAD))],
  ] as const)(
    'fail/HTTP/1.1 browser, %s: the head, then nothing for limits.upstreamTimeout → 504, counted as 504 not 200',
    async (_name, route, script) => {
      script();
      const before = await snapshot(route);
      const got = await h1Browser('GET', `/${route}/silent`);
      expect(got.error).toBeUndefined();
      expect(got).toMatchObject({ status: 504, contentType: 'application/json', cut: false });
      expect(JSON.parse(got.body)).toMatchObject({ code: 'MESHAUTH_ERR_UPSTREAM_TIMEOUT' });
      expect(await snapshot(route)).toEqual({
        ...before,
        edgeLate: before.edgeLate + 1,
        late: before.late + 1,
        timeout: before.timeout + 1,
        requests: before.requests + 1,
      });
    },
  );

  it.each([
    ['HTTP/2 peer', 'h2peer'],
    ['HTTP/1.1 peer', 'h1peer'],
  ] as const)(
    'ok/HTTP/1.1 browser, %s: the head, then the body a moment later → the whole answer, counted once as 200',
    async (_name, route) => {
      let sendBody: (() => void) | undefined;
      h2Script = (s) => {
        s.respond(200, { 'content-type': 'text/plain', 'content-length': '5' });
        sendBody = () => s.data('hello', true);
      };
      h1Script = (r) => {
        r.tls.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\n');
        sendBody = () => r.tls.write('hello');
      };
      const before = await snapshot(route);
      const answer = h1Browser('GET', `/${route}/late-body`);
      (await waitFor('the head at the peer', () => sendBody))();
      expect(await answer).toMatchObject({ status: 200, body: 'hello', cut: false });
      expect(await snapshot(route)).toEqual({
        ...before,
        edgeOk: before.edgeOk + 1,
        ok: before.ok + 1,
        requests: before.requests + 1,
      });
    },
  );

  // The peer sends nothing more after each of these and keeps its connection: a head held for a body byte would be
  // answered 504 once limits.upstreamTimeout passed.
  const bodiless: Array<[string, 'h2peer' | 'h1peer', 'GET' | 'HEAD', number, () => void]> = [
    ['HTTP/2 peer, 204', 'h2peer', 'GET', 204, () => (h2Script = (s) => s.respond(204, {}, true))],
    [
      'HTTP/2 peer, HEAD answered 200 with a content-length',
      'h2peer',
      'HEAD',
      200,
      () => (h2Script = (s) => s.respond(200, { 'content-length': '10' }, true)),
    ],
    [
      'HTTP/1.1 peer, 204',
      'h1peer',
      'GET',
      204,
      () => (h1Script = (r) => r.tls.write('HTTP/1.1 204 No Content\r\n\r\n')),
    ],
    [
      'HTTP/1.1 peer, HEAD answered 200 with a content-length',
      'h1peer',
      'HEAD',
      200,
      () => (h1Script = (r) => r.tls.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n')),
    ],
    [
      'HTTP/1.1 peer, 200 with content-length 0',
      'h1peer',
      'GET',
      200,
      () => (h1Script = (r) => r.tls.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n')),
    ],
  ];

  it.each(bodiless)(
    'ok/HTTP/1.1 browser, %s: a bodiless answer goes out at once, counted as its status',
    async (_name, route, method, status, script) => {
      script();
      const before = { edge: await edgeAnswers(route, String(status)), late: await outbound('504') };
      const got = await h1Browser(method, `/${route}/bodiless-${status}`);
      expect(got).toMatchObject({ status, body: '', cut: false });
      expect(got.error).toBeUndefined();
      expect(await edgeAnswers(route, String(status))).toBe(before.edge + 1);
      expect(await outbound('504')).toBe(before.late);
    },
  );

  // An HTTP/2 browser's head is not held (node:http2's compat response sends HEADERS at writeHead, so holding would
  // delay every streaming answer): a cut after it resets the browser's stream, counted as the 200 it began as and a
  // truncated response beside it.
  it.each([
    [
      'HTTP/2 peer: HEADERS(200), then RST_STREAM(INTERNAL_ERROR)',
      'h2peer',
      () => {
        h2Script = (s) => {
          h2Head(s);
          s.reset(INTERNAL_ERROR);
        };
      },
    ],
    ['HTTP/1.1 peer: the head, then the connection closes', 'h1peer', () => (h1Script = (r) => r.tls.end(H1_HEAD))],
  ] as const)(
    'ok/HTTP/2 browser, %s → the 200 head, then RST_STREAM(INTERNAL_ERROR), never END_STREAM',
    async (_name, route, script) => {
      script();
      const before = await snapshot(route);
      expect(await h2Browser(`/${route}/cut-h2`)).toEqual({ status: 200, ended: false, rstCode: INTERNAL_ERROR });
      await waitFor('the cut counted', async () => (await truncated()) > before.cut);
      expect(await snapshot(route)).toEqual({
        ...before,
        edgeOk: before.edgeOk + 1,
        ok: before.ok + 1,
        cut: before.cut + 1,
        requests: before.requests + 1,
      });
    },
  );

  it.each([
    ['HTTP/2 peer', 'h2peer'],
    ['HTTP/1.1 peer', 'h1peer'],
  ] as const)(
    'ok/HTTP/2 browser, %s: the head arrives before any body byte left the peer, then the whole answer',
    async (_name, route) => {
      let sendBody: (() => void) | undefined;
      h2Script = (s) => {
        s.respond(200, { 'content-type': 'text/event-stream' });
        sendBody = () => s.data('data: 1\n\n', true);
      };
      h1Script = (r) => {
        r.tls.write('HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 9\r\n\r\n');
        sendBody = () => r.tls.write('data: 1\n\n');
      };
      // The body is sent only once the browser holds the head.
      const got = await h2Browser(`/${route}/stream`, () => sendBody?.());
      expect(got).toEqual({ status: 200, ended: true, rstCode: undefined });
    },
  );
});
