// The inbound's lean lane on real mTLS sockets: a whole bodiless HTTP/1.1 GET or HEAD goes through the listener's
// stages over a LeanH1Sink (no node:http request or response), anything else on the connection is node:http's from
// there on, and both answer alike: identity headers set and forged ones stripped, refusals closing a connection that
// was never served, the drain's `Connection: close`.
import type { TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { MeshauthError } from '../../src/errors/index.js';
import { LeanH1Sink } from '../../src/sidecar/pipeline/sinks.js';
import { rawTlsSocket } from '../helpers/raw-tls.js';
import { startApp, startTestSidecar, type TestApp, type TestSidecar, testConfig } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

interface Answer {
  readonly head: string;
  readonly body: string;
}

/** An mTLS HTTP/1.1 connection to the inbound that reads answers framed by Content-Length (or none, for HEAD). */
class Caller {
  readonly socket: TLSSocket;
  readonly closed: Promise<void>;
  #buffer = '';
  #waiters: (() => void)[] = [];

  private constructor(socket: TLSSocket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#buffer += chunk.toString('latin1');
      for (const wake of this.#waiters.splice(0)) wake();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static async open(ca: TestCa, sidecar: TestSidecar): Promise<Caller> {
    const client = await ca.issue({ id: ca.idFor('/ns/shop/sa/client') });
    const socket = rawTlsSocket(sidecar.sidecar.inboundPort, client, ca.bundlePem);
    await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
    return new Caller(socket);
  }

  /** The next whole answer; `bodiless` for a HEAD's. */
  async answer(bodiless = false): Promise<Answer> {
    for (let turn = 0; turn < 200; turn++) {
      const end = this.#buffer.indexOf('\r\n\r\n');
      if (end !== -1) {
        const head = this.#buffer.slice(0, end);
        const length = bodiless ? 0 : Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (this.#buffer.length >= end + 4 + length) {
          const body = this.#buffer.slice(end + 4, end + 4 + length);
          this.#buffer = this.#buffer.slice(end + 4 + length);
          return { head, body };
        }
      }
      await Promise.race([
        new Promise<void>((resolve) => this.#waiters.push(resolve)),
        this.closed,
        new Promise((resolve) => setTimeout(resolve, 50)),
      ]);
    }
    throw new Error(`no whole answer; received ${JSON.stringify(this.#buffer)}`);
  }
}

describe('inbound: the lean lane', () => {
  let ca: TestCa;
  let app: TestApp;
  let sidecar: TestSidecar;
  const authorizations: (string | undefined)[] = [];

  beforeAll(async () => {
    ca = await TestCa.create();
    app = await startApp();
    sidecar = await startTestSidecar(ca, ca.idFor('/ns/shop/sa/server'), testConfig({ appPort: app.port }), {
      // The hooks' view reads the header object, which the lane builds only when asked.
      hooks: {
        authenticateEndUser: async (view) => {
          authorizations.push(view.headers.authorization);
          if (view.target !== '/challenge') return {};
          return {
            reject: new MeshauthError('MESHAUTH_ERR_TOKEN_INVALID', 'bearer token required', { reason: 'missing' }),
            rejectHeaders: { 'www-authenticate': 'Bearer realm="shop"' },
          };
        },
      },
    });
  });
  afterAll(async () => {
    await sidecar?.sidecar.close(0);
    await app?.close();
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('serves GETs and a HEAD on one kept connection itself, with the identity headers set and forged ones dropped', async () => {
    const lane = vi.spyOn(LeanH1Sink.prototype, 'forwardHandler');
    const caller = await Caller.open(ca, sidecar);
    const before = app.seen.length;
    caller.socket.write('GET /one HTTP/1.1\r\nHost: server\r\nx-forwarded-client-cert: By=forged\r\n\r\n');
    const first = await caller.answer();
    caller.socket.write('GET /two HTTP/1.1\r\nHost: server\r\nAuthorization: Bearer t-two\r\n\r\n');
    const second = await caller.answer();
    caller.socket.write('HEAD /three HTTP/1.1\r\nHost: server\r\n\r\n');
    const third = await caller.answer(true);
    expect([first, second, third].map((a) => a.head.split('\r\n')[0])).toEqual([
      'HTTP/1.1 200 OK',
      'HTTP/1.1 200 OK',
      'HTTP/1.1 200 OK',
    ]);
    expect(third.head).toMatch(/\r\nconnection: keep-alive/i);
    expect(lane).toHaveBeenCalledTimes(3);
    const seen = app.seen.slice(before);
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual(['GET /one', 'GET /two', 'HEAD /three']);
    const xfcc = seen[0]?.headers['x-forwarded-client-cert'] as string;
    expect(xfcc).toContain('URI=spiffe://example.org/ns/shop/sa/client');
    expect(xfcc).not.toContain('forged');
    expect(authorizations.at(-2)).toBe('Bearer t-two');
    caller.socket.destroy();
  });

  it('hands a request with a body to node:http for the rest of the connection, and it is served there', async () => {
    const lane = vi.spyOn(LeanH1Sink.prototype, 'forwardHandler');
    const caller = await Caller.open(ca, sidecar);
    const before = app.seen.length;
    caller.socket.write('GET /lane HTTP/1.1\r\nHost: server\r\n\r\n');
    expect((await caller.answer()).head).toMatch(/^HTTP\/1\.1 200/);
    caller.socket.write('POST /upload HTTP/1.1\r\nHost: server\r\nContent-Length: 5\r\n\r\nhello');
    expect((await caller.answer()).head).toMatch(/^HTTP\/1\.1 200/);
    caller.socket.write('GET /after HTTP/1.1\r\nHost: server\r\n\r\n');
    expect((await caller.answer()).head).toMatch(/^HTTP\/1\.1 200/);
    expect(lane).toHaveBeenCalledTimes(1);
    const seen = app.seen.slice(before);
    expect(seen.map((s) => `${s.method} ${s.url} ${s.bodyBytes}`)).toEqual([
      'GET /lane 0',
      'POST /upload 5',
      'GET /after 0',
    ]);
    caller.socket.destroy();
  });

  it.each([
    // A refusal with a challenge carries it on the lane's answer.
    [
      'a refusal with a challenge',
      'GET /challenge HTTP/1.1\r\nHost: server\r\n',
      401,
      'MESHAUTH_ERR_TOKEN_INVALID',
      /\r\nwww-authenticate: Bearer realm="shop"\r\n/i,
    ],
    [
      'a head the app could read two ways (two Hosts)',
      'GET /twice HTTP/1.1\r\nHost: a\r\nHost: b\r\n',
      400,
      'MESHAUTH_ERR_BAD_REQUEST',
      undefined,
    ],
  ])(
    'fail/%s: refused on the lane, and the connection never served closes',
    async (_name, head, status, code, extra) => {
      const refusals = vi.spyOn(LeanH1Sink.prototype, 'reject');
      const caller = await Caller.open(ca, sidecar);
      const before = app.seen.length;
      caller.socket.write(`${head}\r\n`);
      const refused = await caller.answer();
      expect(refused.head).toMatch(new RegExp(`^HTTP/1\\.1 ${status}`));
      if (extra !== undefined) expect(refused.head).toMatch(extra);
      expect(refused.head).toMatch(/\r\nconnection: close/i);
      expect(JSON.parse(refused.body).code).toBe(code);
      await caller.closed;
      expect(app.seen.length).toBe(before);
      expect(refusals).toHaveBeenCalledTimes(1);
    },
  );

  it('while draining, an answer the lane still owes says Connection: close and the connection closes after it', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slowApp = await startApp((_req, res) => {
      void held.then(() => res.writeHead(200, { 'content-length': '2' }).end('ok'));
    });
    const draining = await startTestSidecar(ca, ca.idFor('/ns/shop/sa/server'), testConfig({ appPort: slowApp.port }));
    const lane = vi.spyOn(LeanH1Sink.prototype, 'forwardHandler');
    try {
      const caller = await Caller.open(ca, draining);
      caller.socket.write('GET /held HTTP/1.1\r\nHost: server\r\n\r\n');
      await waitFor('the request at the app', () => slowApp.seen.length === 1);
      const closing = draining.sidecar.close(Date.now() + 10_000);
      release();
      const answer = await caller.answer();
      expect(answer.head).toMatch(/^HTTP\/1\.1 200/);
      expect(answer.head).toMatch(/\r\nconnection: close/i);
      expect(answer.body).toBe('ok');
      await caller.closed;
      await closing;
      expect(lane).toHaveBeenCalledTimes(1);
    } finally {
      release();
      await draining.sidecar.close(0);
      await slowApp.close();
    }
  });

  it('closes a kept connection idle for the keep-alive time its answers announce, counted as an idle session', async () => {
    const idleSidecar = await startTestSidecar(ca, ca.idFor('/ns/shop/sa/server'), testConfig({ appPort: app.port }), {
      inboundLimits: { keepAliveTimeoutMs: 1_000 },
    });
    const idleCloses = async () =>
      (await idleSidecar.metrics.connectionsRejected.get()).values.find(
        (v) => v.labels.direction === 'inbound' && v.labels.reason === 'idle',
      )?.value ?? 0;
    const lane = vi.spyOn(LeanH1Sink.prototype, 'forwardHandler');
    try {
      const caller = await Caller.open(ca, idleSidecar);
      caller.socket.write('GET /once HTTP/1.1\r\nHost: server\r\n\r\n');
      expect((await caller.answer()).head).toMatch(/\r\nkeep-alive: timeout=1(\r\n|$)/i);
      await caller.closed;
      expect(await idleCloses()).toBe(1);
      expect(lane).toHaveBeenCalledTimes(1);
    } finally {
      await idleSidecar.sidecar.close(0);
    }
  });
});

describe("inbound: the lean lane gives back the caller's place at the app", () => {
  let ca: TestCa;
  let app: TestApp;
  let sidecar: TestSidecar;
  const bigClosedEarly: boolean[] = [];

  beforeAll(async () => {
    ca = await TestCa.create();
    app = await startApp((req, res) => {
      if (req.url === '/cut') {
        // An answer the app breaks off: the caller's is cut too, and the exchange is over.
        res.writeHead(200, { 'content-length': '100' });
        res.write('partial', () => res.socket?.destroy());
        return;
      }
      if (req.url === '/big') {
        // More than the caller will ever read: the sidecar's writes stall until its stall timeout.
        res.writeHead(200, { 'content-length': String(64 * 1024 * 1024) });
        const chunk = Buffer.alloc(64 * 1024, 0x61);
        let sent = 0;
        const pump = (): void => {
          while (sent < 1024 && res.write(chunk)) sent++;
          if (sent < 1024) res.once('drain', pump);
          else res.end();
        };
        res.once('close', () => bigClosedEarly.push(!res.writableFinished));
        pump();
        return;
      }
      res.writeHead(200, { 'content-length': '2' }).end('ok');
    });
    // One place per caller at the app (75 % of 2): an exchange that never gives its place back stops the next.
    sidecar = await startTestSidecar(
      ca,
      ca.idFor('/ns/shop/sa/server'),
      testConfig({ appPort: app.port, appTimeout: '1s' }),
      { inboundLimits: { appConnections: 2, streamIdleTimeoutMs: 500 } },
    );
  });
  afterAll(async () => {
    await sidecar?.sidecar.close(0);
    await app?.close();
  });

  it('fail/after an app answer cut mid-body, the same caller is served again', async () => {
    const cut = await Caller.open(ca, sidecar);
    cut.socket.write('GET /cut HTTP/1.1\r\nHost: server\r\n\r\n');
    await cut.closed;
    const next = await Caller.open(ca, sidecar);
    next.socket.write('GET /ok HTTP/1.1\r\nHost: server\r\n\r\n');
    const answer = await next.answer();
    expect(answer.head).toMatch(/^HTTP\/1\.1 200/);
    expect(answer.body).toBe('ok');
    next.socket.destroy();
  });

  it('fail/after a caller that stopped reading is cut, its app request is aborted and the caller is served again', async () => {
    const stalled = await Caller.open(ca, sidecar);
    stalled.socket.pause();
    stalled.socket.write('GET /big HTTP/1.1\r\nHost: server\r\n\r\n');
    await waitFor('the app request aborted', () => bigClosedEarly.length === 1, 15_000);
    expect(bigClosedEarly).toEqual([true]);
    const next = await Caller.open(ca, sidecar);
    next.socket.write('GET /ok HTTP/1.1\r\nHost: server\r\n\r\n');
    expect((await next.answer()).body).toBe('ok');
    next.socket.destroy();
    stalled.socket.destroy();
  });
});
