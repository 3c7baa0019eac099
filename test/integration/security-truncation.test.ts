// Truncated messages are never delivered as complete: a response the app cuts mid-body reaches the caller as a reset
// stream (h2: RST_STREAM(INTERNAL_ERROR), no END_STREAM; HTTP/1.1: the connection closed without the terminating
// chunk), and a request the caller cuts mid-body reaches the app as a connection reset mid-body, never as `0\r\n\r\n`.
// Real sockets end to end: a raw TCP app that records the bytes it receives.
import { constants, type IncomingHttpHeaders } from 'node:http2';
import { Writable } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/telemetry/index.js';
import { eventually, mtlsH2Session, type RawApp, type RawAppConnection, startRawApp } from '../helpers/raw-app.js';
import { available, runCommand, startTestSidecar, type TestSidecar, testConfig } from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';

const TD = 'example.org';

/** A logger whose JSON lines land in `lines` (the one log line per rejection is part of what is asserted). */
function capturingLogger(lines: Record<string, unknown>[]) {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line));
      done();
    },
  });
  return createLogger({ level: 'info', destination: sink });
}

/** Did the app receive a chunked body's terminating chunk (anything after the head ending in `0\r\n\r\n`)? */
function sawLastChunk(received: string): boolean {
  const head = received.indexOf('\r\n\r\n');
  return head !== -1 && received.slice(head + 4).includes('0\r\n\r\n');
}

const RESPONSE_HEAD_CHUNKED = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n';

/** App behaviours once the request head arrived: answer part of a chunked body, then die. */
function cutResponse(extraHead: string, kill: (socket: RawAppConnection['socket']) => void) {
  return (connection: RawAppConnection): void => {
    if (!connection.received.includes('\r\n\r\n') || connection.socket.writableEnded) return;
    connection.socket.write(`${RESPONSE_HEAD_CHUNKED}${extraHead}\r\n5\r\nhello\r\n`);
    setTimeout(() => kill(connection.socket), 50);
  };
}

describe('truncated responses and requests on the inbound', () => {
  let ca: TestCa;
  let client: TestSvid;
  const closers: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    ca = await TestCa.create(TD);
    client = await ca.issue({ id: ca.idFor('/ns/shop/sa/client') });
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });
  afterAll(() => undefined);

  async function inboundTo(app: RawApp, logs: Record<string, unknown>[] = []): Promise<TestSidecar> {
    const sidecar = await startTestSidecar(ca, ca.idFor('/ns/shop/sa/server'), testConfig({ appPort: app.port }), {
      logger: capturingLogger(logs),
    });
    closers.push(() => sidecar.sidecar.close(0));
    return sidecar;
  }
  async function rawApp(onData?: (c: RawAppConnection) => void): Promise<RawApp> {
    const app = await startRawApp(onData);
    closers.push(() => app.close());
    return app;
  }
  const counter = async (sidecar: TestSidecar, name: string, labels: string): Promise<number> => {
    const text = await sidecar.metrics.registry.getSingleMetricAsString(name);
    const line = text.split('\n').find((l) => l.includes(labels));
    return line === undefined ? 0 : Number(line.split(' ').at(-1));
  };

  const cuts: Array<[string, string, (s: RawAppConnection['socket']) => void]> = [
    ['keep-alive response, app socket reset', '', (s) => s.resetAndDestroy()],
    ['keep-alive response, app socket ended', '', (s) => s.end()],
    ['Connection: close response, app socket ended', 'Connection: close\r\n', (s) => s.end()],
    ['Connection: close response, app socket reset', 'Connection: close\r\n', (s) => s.resetAndDestroy()],
  ];

  it.each(cuts)(
    'fail/h2: %s → RST_STREAM(INTERNAL_ERROR) without END_STREAM, counted, logged',
    async (_n, head, kill) => {
      const app = await rawApp(cutResponse(head, kill));
      const logs: Record<string, unknown>[] = [];
      const sidecar = await inboundTo(app, logs);
      const session = await mtlsH2Session(sidecar.sidecar.inboundPort, client, ca.bundlePem);
      closers.push(async () => void session.destroy());
      const outcome = await new Promise<{ status: number; body: string; ended: boolean; rstCode: number | undefined }>(
        (resolve) => {
          const stream = session.request({ ':method': 'GET', ':path': '/download' }, { endStream: true });
          let status = 0;
          let body = '';
          let ended = false;
          stream.on('response', (h: IncomingHttpHeaders) => {
            status = Number(h[':status']);
          });
          stream.on('data', (d: Buffer) => {
            body += d.toString();
          });
          stream.on('end', () => {
            ended = true;
          });
          stream.on('error', () => undefined);
          stream.on('close', () => resolve({ status, body, ended, rstCode: stream.rstCode }));
        },
      );
      expect(outcome.status).toBe(200);
      expect(outcome.body).toBe('hello');
      expect(outcome.ended).toBe(false); // no END_STREAM: the caller cannot take the body as complete
      expect(outcome.rstCode).toBe(constants.NGHTTP2_INTERNAL_ERROR);
      expect(await counter(sidecar, 'meshauth_streams_reset_total', 'reason="app_response_truncated"')).toBe(1);
      expect(logs.filter((l) => l.msg === 'response truncated: the app connection failed mid-body')).toHaveLength(1);
    },
  );

  it.each(cuts)('fail/HTTP/1.1: %s → connection closed without the terminating chunk', async (_n, head, kill) => {
    const app = await rawApp(cutResponse(head, kill));
    const sidecar = await inboundTo(app);
    const reply = await new Promise<string>((resolve, reject) => {
      let text = '';
      const socket = tlsConnect(
        {
          host: '127.0.0.1',
          port: sidecar.sidecar.inboundPort,
          cert: client.chainPem,
          key: client.keyPem,
          ca: [ca.bundlePem],
          checkServerIdentity: () => undefined,
          ALPNProtocols: ['http/1.1'],
        },
        () => socket.write('GET /download HTTP/1.1\r\nHost: b\r\n\r\n'),
      );
      socket.on('data', (d: Buffer) => {
        text += d.toString('latin1');
      });
      socket.on('close', () => resolve(text));
      socket.on('error', (e) => (text === '' ? reject(e) : resolve(text)));
      socket.setTimeout(5_000, () => socket.destroy());
    });
    expect(reply.startsWith('HTTP/1.1 200 OK')).toBe(true);
    expect(reply).toContain('5\r\nhello\r\n');
    expect(reply).not.toContain('0\r\n\r\n');
    expect(await counter(sidecar, 'meshauth_streams_reset_total', 'reason="app_response_truncated"')).toBe(1);
  });

  it('fail/HTTP/1.0 (close-delimited response): the app cuts its body → the caller sees a reset, never a clean end', async () => {
    const app = await rawApp(cutResponse('', (s) => s.resetAndDestroy()));
    const sidecar = await inboundTo(app);
    const outcome = await new Promise<{ text: string; error: string | undefined }>((resolve) => {
      let text = '';
      let error: string | undefined;
      const socket = tlsConnect(
        {
          host: '127.0.0.1',
          port: sidecar.sidecar.inboundPort,
          cert: client.chainPem,
          key: client.keyPem,
          ca: [ca.bundlePem],
          checkServerIdentity: () => undefined,
          ALPNProtocols: ['http/1.1'],
        },
        () => socket.write('GET /download HTTP/1.0\r\nHost: b\r\n\r\n'),
      );
      socket.on('data', (d: Buffer) => {
        text += d.toString('latin1');
      });
      socket.on('error', (e: Error & { code?: string }) => {
        error = e.code ?? e.message;
      });
      socket.on('close', () => resolve({ text, error }));
      socket.setTimeout(5_000, () => socket.destroy());
    });
    expect(outcome.text.startsWith('HTTP/1.1 200 OK')).toBe(true);
    expect(outcome.text.toLowerCase()).not.toContain('content-length');
    expect(outcome.text.endsWith('hello')).toBe(true);
    expect(outcome.error).toBe('ECONNRESET'); // a clean close would end the close-delimited body as complete
  });

  /** Raw app that answers 200 only once it has the whole chunked body; records what it saw. */
  const recordingApp = () =>
    rawApp((c) => {
      if (sawLastChunk(c.received) && !c.socket.writableEnded) {
        c.socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
      }
    });

  it('fail/h2 request stream reset mid-body → the app connection is reset, no terminating chunk', async () => {
    const app = await recordingApp();
    const sidecar = await inboundTo(app);
    const session = await mtlsH2Session(sidecar.sidecar.inboundPort, client, ca.bundlePem);
    closers.push(async () => void session.destroy());
    const stream = session.request({ ':method': 'POST', ':path': '/pay', 'content-type': 'text/plain' });
    stream.on('error', () => undefined);
    stream.write('amount=10');
    expect(await eventually(() => (app.connections[0]?.received ?? '').includes('amount=10'))).toBe(true);
    // destroy() sends RST_STREAM(INTERNAL_ERROR) with no END_STREAM; close() would send END_STREAM first.
    stream.destroy(new Error('client gives up'));
    expect(await eventually(() => app.connections[0]?.closed === true)).toBe(true);
    const seen = app.connections[0] as RawAppConnection;
    expect(seen.received).toContain('transfer-encoding: chunked');
    expect(sawLastChunk(seen.received)).toBe(false);
    expect(await counter(sidecar, 'meshauth_streams_reset_total', 'reason="client_aborted"')).toBe(1);
  });

  it('fail/h2 request body shorter than its content-length → the app connection is reset, counted as a protocol error', async () => {
    const app = await recordingApp();
    const sidecar = await inboundTo(app);
    const session = await mtlsH2Session(sidecar.sidecar.inboundPort, client, ca.bundlePem);
    closers.push(async () => void session.destroy());
    const stream = session.request({ ':method': 'POST', ':path': '/pay', 'content-length': '5' });
    stream.on('error', () => undefined);
    const closed = new Promise<number>((resolve) => stream.on('close', () => resolve(stream.rstCode ?? -1)));
    stream.end('abc'); // END_STREAM after 3 of 5 bytes: nghttp2 resets the stream with PROTOCOL_ERROR
    expect(await closed).toBe(constants.NGHTTP2_PROTOCOL_ERROR);
    expect(await eventually(() => app.connections.every((c) => c.closed))).toBe(true);
    for (const seen of app.connections) expect(seen.received).not.toMatch(/\r\n\r\nabc$/); // never passed on as whole
    expect(
      await eventually(
        async () => (await counter(sidecar, 'meshauth_streams_reset_total', 'reason="protocol_error"')) === 1,
      ),
    ).toBe(true);
    expect(await counter(sidecar, 'meshauth_streams_reset_total', 'reason="client_aborted"')).toBe(0);
  });

  it('fail/h2 session destroyed mid-body → the app connection is reset, no terminating chunk', async () => {
    const app = await recordingApp();
    const sidecar = await inboundTo(app);
    const session = await mtlsH2Session(sidecar.sidecar.inboundPort, client, ca.bundlePem);
    const stream = session.request({ ':method': 'POST', ':path': '/pay' });
    stream.on('error', () => undefined);
    stream.write('amount=10');
    expect(await eventually(() => (app.connections[0]?.received ?? '').includes('amount=10'))).toBe(true);
    session.destroy();
    expect(await eventually(() => app.connections[0]?.closed === true)).toBe(true);
    expect(sawLastChunk(app.connections[0]?.received ?? '')).toBe(false);
  });

  const h1Cuts: Array<[string, string]> = [
    ['chunked body, connection closed before the last chunk', 'Transfer-Encoding: chunked\r\n\r\n9\r\namount=10\r\n'],
    ['chunked body, malformed chunk size mid-body', 'Transfer-Encoding: chunked\r\n\r\n9\r\namount=10\r\n'],
    ['content-length body, connection closed early', 'Content-Length: 100\r\n\r\namount=10'],
  ];
  it.each(h1Cuts)('fail/HTTP/1.1 %s → the app connection is reset mid-body', async (name, rest) => {
    const app = await recordingApp();
    const sidecar = await inboundTo(app);
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: sidecar.sidecar.inboundPort,
      cert: client.chainPem,
      key: client.keyPem,
      ca: [ca.bundlePem],
      checkServerIdentity: () => undefined,
      ALPNProtocols: ['http/1.1'],
    });
    socket.on('error', () => undefined);
    closers.push(async () => void socket.destroy());
    await new Promise((resolve) => socket.once('secureConnect', resolve));
    socket.write(`POST /pay HTTP/1.1\r\nHost: b\r\n${rest}`);
    expect(await eventually(() => (app.connections[0]?.received ?? '').includes('amount=10'))).toBe(true);
    if (name.includes('malformed')) socket.write('zz\r\n');
    else socket.destroy();
    expect(await eventually(() => app.connections[0]?.closed === true)).toBe(true);
    const seen = app.connections[0] as RawAppConnection;
    expect(sawLastChunk(seen.received)).toBe(false);
    // A content-length body is cut, never padded: the app reads fewer bytes than announced, then a reset.
    expect(seen.received.endsWith('amount=10')).toBe(true);
  });

  it.skipIf(!available('curl'))(
    'fail/curl over h2 sees an error (exit ≠ 0) when the app cuts its response',
    async () => {
      const app = await rawApp(cutResponse('', (s) => s.resetAndDestroy()));
      const sidecar = await inboundTo(app);
      const dir = await import('node:fs').then((fs) => fs.mkdtempSync('/tmp/meshauth-trunc-'));
      closers.push(async () => (await import('node:fs')).rmSync(dir, { recursive: true, force: true }));
      const fs = await import('node:fs');
      fs.writeFileSync(`${dir}/c.pem`, client.chainPem);
      fs.writeFileSync(`${dir}/k.pem`, client.keyPem);
      fs.writeFileSync(`${dir}/ca.pem`, ca.bundlePem);
      const result = await runCommand('curl', [
        '-sk',
        '--http2',
        '--max-time',
        '5',
        '--cert',
        `${dir}/c.pem`,
        '--key',
        `${dir}/k.pem`,
        `https://127.0.0.1:${sidecar.sidecar.inboundPort}/download`,
      ]);
      expect(result.stdout).toBe('hello');
      expect(result.code).not.toBe(0);
    },
  );
});

// Through both sidecars (app A → A's outbound → h2 → B's inbound → app B): every hop must propagate the cut.
// These pass once the outbound also propagates a reset peer stream as a cut response / cut upload.
describe('truncation across a sidecar pair', () => {
  let ca: TestCa;
  const closers: (() => Promise<void>)[] = [];
  beforeAll(async () => {
    ca = await TestCa.create(TD);
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  /** A's outbound port, with B's inbound in front of `app`. */
  async function pairTo(app: RawApp): Promise<number> {
    const idB = ca.idFor('/ns/shop/sa/b');
    const b = await startTestSidecar(ca, idB, testConfig({ appPort: app.port }));
    closers.push(() => b.sidecar.close(0));
    const a = await startTestSidecar(
      ca,
      ca.idFor('/ns/shop/sa/a'),
      testConfig({ appPort: 1, routes: { 'b.mesh': { address: `127.0.0.1:${b.sidecar.inboundPort}`, ids: [idB] } } }),
    );
    closers.push(() => a.sidecar.close(0));
    return a.sidecar.outboundPort;
  }

  it.skipIf(!available('curl'))(
    'fail/curl via the pair sees an error (exit ≠ 0) when app B cuts its response',
    async () => {
      const app = await startRawApp(cutResponse('', (s) => s.resetAndDestroy()));
      closers.push(() => app.close());
      const outbound = await pairTo(app);
      const result = await runCommand('curl', [
        '-s',
        '--max-time',
        '5',
        '-x',
        `http://127.0.0.1:${outbound}`,
        'http://b.mesh/download',
      ]);
      expect(result.code).not.toBe(0); // 18 (partial file) or 56 (receive failure); never a clean end
    },
  );

  it('fail/app A cuts a chunked upload → app B sees the connection closed before the terminating chunk', async () => {
    const app = await startRawApp((c) => {
      if (sawLastChunk(c.received) && !c.socket.writableEnded) {
        c.socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
      }
    });
    closers.push(() => app.close());
    const outbound = await pairTo(app);
    const { connect } = await import('node:net');
    const socket = connect(outbound, '127.0.0.1');
    socket.on('error', () => undefined);
    closers.push(async () => void socket.destroy());
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(
      'POST http://b.mesh/pay HTTP/1.1\r\nHost: b.mesh\r\nTransfer-Encoding: chunked\r\n\r\n9\r\namount=10\r\n',
    );
    expect(await eventually(() => (app.connections[0]?.received ?? '').includes('amount=10'))).toBe(true);
    socket.destroy();
    expect(await eventually(() => app.connections[0]?.closed === true)).toBe(true);
    expect(sawLastChunk(app.connections[0]?.received ?? '')).toBe(false);
  });
});
