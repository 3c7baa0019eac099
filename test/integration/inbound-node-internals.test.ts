// Pins the Node / undici behaviours the inbound relies on (src/platform/node-internals.ts): if an upgrade changes
// one, the test here fails with its name instead of a security test failing somewhere downstream. Real sockets on
// 127.0.0.1, self-signed throwaway TLS where TLS is needed.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  constants,
  createSecureServer,
  connect as h2Connect,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import { type AddressInfo, connect, createServer as createNetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addAbortSignal } from 'node:stream';
import { createServer as createTlsServer, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  keepReadingAfterEnd,
  pendingResponse,
  startTimeoutSweeper,
  sweepTimeoutsWhileConnected,
  tcpSocketOf,
  UNDICI_PARSER_ERROR_NAME,
  UnansweredResponses,
} from '../../src/platform/index.js';
import { classifyAppError } from '../../src/sidecar/inbound/listener-core.js';
import { peerChainDer } from '../../src/tls/index.js';
import { eventually } from '../helpers/raw-app.js';
import { available, runCommand } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

const closers: (() => void)[] = [];
afterAll(() => {
  for (const close of closers.reverse()) close();
});

function listening(server: {
  listen: (port: number, host: string, cb: () => void) => unknown;
  address: () => unknown;
}) {
  return new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
}

/** What a server sends to a request head that never finishes, until it closes the connection. */
function unfinishedHeadReply(port: number): Promise<string> {
  return new Promise<string>((resolve) => {
    let text = '';
    const socket = connect(port, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nHost: x\r\n'));
    socket.on('data', (d: Buffer) => {
      text += d.toString();
    });
    socket.on('close', () => resolve(text));
  });
}

describe('Node http internals', () => {
  it("emit('listening') starts the headersTimeout sweeper of a server that is fed sockets", async () => {
    const http = createHttpServer({ headersTimeout: 200, requestTimeout: 400, connectionsCheckingInterval: 50 });
    startTimeoutSweeper(http);
    closers.push(() => http.close());
    const front = createNetServer((socket) => http.emit('connection', socket));
    closers.push(() => front.close());
    const port = await listening(front);
    expect(await unfinishedHeadReply(port)).toMatch(/^HTTP\/1\.1 408/);
  });

  it('sweepTimeoutsWhileConnected: the sweeper stops without connections and runs again with the next one (408s)', async () => {
    const http = createHttpServer({ headersTimeout: 200, requestTimeout: 400, connectionsCheckingInterval: 50 });
    sweepTimeoutsWhileConnected(http);
    closers.push(() => http.close());
    const port = await listening(http);
    // The sweeper's Timeout, under the name Node gives it: found, with its period, and stopped after a sweep that
    // found nobody.
    const sweeper = () => {
      const key = Object.getOwnPropertySymbols(http).find(
        (symbol) => symbol.description === 'http.server.connectionsCheckingInterval',
      );
      return (key === undefined ? undefined : (http as unknown as Record<symbol, unknown>)[key]) as
        | { _repeat?: number; _destroyed?: boolean }
        | undefined;
    };
    expect(sweeper()?._repeat).toBe(50);
    expect(await eventually(() => sweeper()?._destroyed === true)).toBe(true);
    for (let round = 0; round < 2; round++) {
      expect(await unfinishedHeadReply(port)).toMatch(/^HTTP\/1\.1 408/);
      expect(await eventually(() => sweeper()?._destroyed === true)).toBe(true);
    }
  });

  it('socket._httpMessage is the response in progress, and unset between exchanges', async () => {
    let during: ServerResponse | undefined;
    let served: Socket | undefined;
    const http = createHttpServer((req, res) => {
      during = pendingResponse(req.socket);
      served = req.socket;
      res.end(during === res ? 'same' : 'different');
    });
    closers.push(() => http.close());
    const port = await listening(http);
    const body = await fetch(`http://127.0.0.1:${port}/`).then((r) => r.text());
    expect(body).toBe('same');
    expect(await eventually(() => served !== undefined && pendingResponse(served) === undefined)).toBe(true);
  });
  it('answerClosesConnection: a queued answer that says Connection: close is seen (UnansweredResponses.behindClosingAnswer)', async () => {
    const unanswered = new UnansweredResponses();
    const seen: [string, boolean][] = [];
    const http = createHttpServer((req, res) => {
      seen.push([req.url as string, unanswered.behindClosingAnswer(req.socket)]);
      unanswered.add(req.socket, res);
      res.on('finish', () => unanswered.answered(req.socket, res));
      // /close is queued behind /keep's answer when it writes its own: node:http keeps that head until its turn.
      if (req.url === '/close') res.writeHead(200, { connection: 'close', 'content-length': 2 });
      if (req.url === '/keep') setTimeout(() => res.end('ok'), 20);
      else res.end('ok');
    });
    closers.push(() => http.close());
    const port = await listening(http);
    const pipelined = ['/keep', '/close', '/behind'].map((path) => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
    const client = connect(port, '127.0.0.1', () => client.write(pipelined.join('')));
    closers.push(() => client.destroy());
    let reply = '';
    client.on('data', (d: Buffer) => {
      reply += d.toString('latin1');
    });
    await new Promise<void>((resolve) => client.once('close', () => resolve()));
    expect(seen).toEqual([
      ['/keep', false],
      ['/close', false],
      ['/behind', true],
    ]);
    expect(reply.match(/HTTP\/1\.1 200/g)).toHaveLength(2);
  });
  it('keepReadingAfterEnd: the rest of a body after a finished Connection: close answer is read, not reset', async () => {
    let served: { socket: Socket; req: IncomingMessage } | undefined;
    let kept: boolean | undefined;
    const http = createHttpServer((req, res) => {
      // A consumer that stops reading (as undici does once the app is done): node:http neither dumps nor reads on.
      req.once('data', () => req.pause());
      const socket = req.socket;
      served = { socket, req };
      res.once('finish', () => {
        kept = keepReadingAfterEnd(socket, req); // node:http has detached the socket from req and res by now
      });
      res.writeHead(200, { connection: 'close', 'content-length': 2 });
      res.end('ok');
    });
    closers.push(() => http.close());
    closers.push(() => served?.socket.destroy());
    const port = await listening(http);
    const client = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    closers.push(() => client.destroy());
    let failed = false;
    client.on('error', () => {
      failed = true;
    });
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
    client.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n');
    expect(await eventually(() => kept !== undefined)).toBe(true);
    const chunk = 'a'.repeat(65_536);
    for (let i = 0; i < 10 && !failed; i++) {
      client.write(chunk);
      await eventually(() => false, 20);
    }
    expect(kept).toBe(true);
    expect(await eventually(() => (served?.socket.bytesRead ?? 0) > 600_000), 'the whole upload read').toBe(true);
    expect(failed, 'no reset').toBe(false);
    expect(served?.socket.destroyed).toBe(false);
  });
});

describe('undici internals', () => {
  it('a malformed response head is an HTTPParserError (classified 502) and a late head UND_ERR_HEADERS_TIMEOUT (504)', async () => {
    const bad = createNetServer((socket) =>
      socket.on('data', () => socket.end('HTTP/1.1 200 OK\r\nBad Header\r\n\r\n')),
    );
    closers.push(() => bad.close());
    const silent = createNetServer(() => undefined);
    closers.push(() => silent.close());
    const [badPort, silentPort] = [await listening(bad), await listening(silent)];
    const failure = async (port: number, options = {}) => {
      const pool = new Pool(`http://127.0.0.1:${port}`, options);
      try {
        await pool.request({ path: '/', method: 'GET' });
        return undefined;
      } catch (error) {
        return error as Error & { code?: string };
      } finally {
        await pool.destroy();
      }
    };
    const parse = await failure(badPort);
    expect(parse?.name).toBe(UNDICI_PARSER_ERROR_NAME);
    expect(classifyAppError(parse as Error).code).toBe('MESHAUTH_ERR_UPSTREAM_PROTOCOL');
    const timeout = await failure(silentPort, { headersTimeout: 100 });
    expect(timeout?.code).toBe('UND_ERR_HEADERS_TIMEOUT');
    expect(classifyAppError(timeout as Error).code).toBe('MESHAUTH_ERR_UPSTREAM_TIMEOUT');
  });
});

describe.skipIf(!available('openssl') || !available('curl'))('Node http2 and tls internals', () => {
  let key: string;
  let cert: string;
  beforeAll(() => {
    const dir = mkdtempSync(join(tmpdir(), 'meshauth-internals-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-keyout',
        join(dir, 'k.pem'),
        '-out',
        join(dir, 'c.pem'),
      ],
      { stdio: 'ignore' },
    );
    key = readFileSync(join(dir, 'k.pem'), 'utf8');
    cert = readFileSync(join(dir, 'c.pem'), 'utf8');
    rmSync(dir, { recursive: true, force: true });
  });

  /** An h2 server whose 'stream' handler is `onStream`; returns a connected client session. */
  async function h2Pair(
    onStream: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, raw: string[]) => void,
  ) {
    const server = createSecureServer({ key, cert });
    server.on('session', (session) => session.on('stream', onStream));
    closers.push(() => server.close());
    const port = await listening(server);
    const client = h2Connect(`https://127.0.0.1:${port}`, { ca: cert, checkServerIdentity: () => undefined });
    client.on('error', () => undefined);
    closers.push(() => client.destroy());
    return Object.assign(client, { port });
  }

  it("the session 'stream' event passes the decoded header list, repeats included, as its 4th argument", async () => {
    let raw: string[] = [];
    let headers: IncomingHttpHeaders = {};
    const client = await h2Pair((stream, h, _flags, r) => {
      headers = h;
      raw = r;
      stream.respond({ ':status': 200 });
      stream.end();
    });
    // curl sends both lines of a repeated header over h2; node:http2's client refuses to.
    const port = client.port;
    const result = await runCommand('curl', [
      '-sk',
      '--http2',
      '-H',
      'user-agent: a',
      '-H',
      'user-agent: b',
      `https://127.0.0.1:${port}/`,
    ]);
    expect(result.code).toBe(0);
    expect(Array.isArray(raw)).toBe(true);
    expect(headers['user-agent']).toBe('a');
    expect(raw.filter((_, i) => raw[i - 1] === 'user-agent' && i % 2 === 1)).toEqual(['a', 'b']);
  });

  const endings: Array<[string, (s: ServerHttp2Stream) => void, boolean, number]> = [
    [
      'close(INTERNAL_ERROR) sends END_STREAM first',
      (s) => s.close(constants.NGHTTP2_INTERNAL_ERROR),
      true,
      constants.NGHTTP2_NO_ERROR,
    ],
    [
      'destroy(error) resets without END_STREAM',
      (s) => s.destroy(new Error('cut')),
      false,
      constants.NGHTTP2_INTERNAL_ERROR,
    ],
    [
      // Why the sidecar resets a cut response with INTERNAL_ERROR, not CANCEL (H2Sink.idle): without END_STREAM on
      // the wire, a node:http2 client still ends the response cleanly ('end', no 'error') on CANCEL.
      'destroy with an AbortError resets with CANCEL, which a node:http2 client ends like END_STREAM',
      (s) => addAbortSignal(AbortSignal.abort(), s),
      true,
      constants.NGHTTP2_CANCEL,
    ],
  ];
  it.each(endings)('Http2Stream.%s', async (_name, end, endedExpected, code) => {
    const client = await h2Pair((stream) => {
      stream.on('error', () => undefined);
      stream.respond({ ':status': 200 });
      stream.write('partial', () => end(stream));
    });
    const stream = client.request({ ':path': '/' }, { endStream: true });
    let ended = false;
    stream.on('end', () => {
      ended = true;
    });
    stream.on('error', () => undefined);
    stream.resume();
    await new Promise((resolve) => stream.on('close', resolve));
    expect(ended).toBe(endedExpected);
    expect(stream.rstCode).toBe(code);
  });

  it("a reset request stream emits 'aborted' before its readable side ends", async () => {
    const order: string[] = [];
    const seen = new Promise<void>((resolve) => {
      void h2Pair((stream) => {
        stream.on('error', () => undefined);
        stream.on('aborted', () => order.push('aborted'));
        stream.on('end', () => order.push('end'));
        stream.on('close', () => resolve());
        stream.resume();
      }).then((client) => {
        const request = client.request({ ':method': 'POST', ':path': '/' });
        request.on('error', () => undefined);
        request.write('x', () => request.destroy(new Error('cut')));
      });
    });
    await seen;
    expect(order[0]).toBe('aborted');
  });

  it("with a 'tlsClientError' listener, a socket whose handshake timed out stays open until it is destroyed", async () => {
    let failed: TLSSocket | undefined;
    const server = createTlsServer({ key, cert, handshakeTimeout: 100 });
    server.on('tlsClientError', (_error, socket: TLSSocket) => {
      failed = socket;
    });
    closers.push(() => server.close());
    const port = await listening(server);
    const idle = connect(port, '127.0.0.1');
    idle.on('error', () => undefined);
    closers.push(() => idle.destroy());
    expect(await eventually(() => failed !== undefined)).toBe(true);
    expect(failed?.destroyed).toBe(false);
    failed?.destroy();
    expect(await eventually(() => idle.destroyed || idle.readableEnded)).toBe(true);
  });

  it("a TLS server's socket keeps the TCP socket it was accepted on as `_parent` (tcpSocketOf)", async () => {
    const server = createTlsServer({ key, cert });
    let accepted: Socket | undefined;
    let secured: TLSSocket | undefined;
    server.on('connection', (raw: Socket) => {
      accepted = raw;
    });
    server.on('secureConnection', (socket: TLSSocket) => {
      secured = socket;
    });
    closers.push(() => server.close());
    const port = await listening(server);
    const client = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false });
    client.on('error', () => undefined);
    closers.push(() => client.destroy());
    expect(await eventually(() => secured !== undefined)).toBe(true);
    expect(tcpSocketOf(secured as TLSSocket)).toBe(accepted);
    expect(tcpSocketOf(accepted as Socket)).toBe(accepted);
    secured?.destroy();
  });

  it('a server that does not verify client chains itself reports the whole chain the client sent', async () => {
    // The CA relies on this (src/ca/server.ts has no `ca`) through getPeerCertificate(true) (peerChainDer): the
    // certificates the client sent, leaf first. Once OpenSSL verified a client chain, Node 24 reports the leaf alone,
    // and the inbound completes it (removed-roots.ts).
    const ca = await TestCa.create('example.org');
    const client = await ca.issue({ id: ca.idFor('/ns/a/sa/b') });
    const sent = [client.leaf, ca.intermediate].map((c) => Buffer.from(c.rawData).toString('hex'));
    const reported = new Promise<string[]>((resolve) => {
      const server = createTlsServer({ key, cert, requestCert: true, rejectUnauthorized: false }, (socket) => {
        const ders = peerChainDer(socket).map((der) => der.toString('hex'));
        socket.destroy();
        resolve(ders);
      });
      closers.push(() => server.close());
      void listening(server).then((port) => {
        const socket = tlsConnect({
          port,
          host: '127.0.0.1',
          ca: cert,
          checkServerIdentity: () => undefined,
          cert: client.chainPem,
          key: client.keyPem,
        });
        socket.on('error', () => undefined);
        closers.push(() => socket.destroy());
      });
    });
    expect(await reported).toEqual(sent);
  });
});
