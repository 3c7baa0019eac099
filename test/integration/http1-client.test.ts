// The HTTP/1.1 client (Http1Client) on real sockets, over TCP as the inbound's app hop uses it, against a raw TCP app
// that shows the exact bytes it receives and answers byte for byte: what it decides itself, beyond what the whole
// suite drives through it (every app-facing test of the inbound, external listener and gateway runs on it). Keep-alive and the server's hint, the
// connection bound with FIFO waiting, no reuse of a connection whose app sent more than one answer, request bodies
// (chunked without a length, cut ones never completed, an answer before the body's end), informational answers,
// HEAD, answers delimited by the connection's end, the timeouts' codes and close(). Then over a connector, as the
// outbound's mesh hop uses it (a dial that hands over a connected socket): a failed dial reaching its request as the
// same error, the handler connected only once the dial resolved, and close() for a retired client.
import { createServer, type IncomingMessage } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { PassThrough, Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { Http1Client, type Http1Request, type Http1TcpOptions } from '../../src/sidecar/http1-client.js';
import { eventually, type RawApp, type RawAppConnection, startRawApp } from '../helpers/raw-app.js';

interface Recorded {
  status: number;
  headers: string[];
  body: string;
  readonly done: Promise<{ error?: Error & { code?: string } }>;
}

/** A DispatchHandler that records what the client calls, as ForwardHandler receives it. */
function recorder(options: { pauseAtHead?: boolean } = {}): Recorded & { handler: object; resume(): void } {
  let settle: (outcome: { error?: Error & { code?: string } }) => void = () => undefined;
  let resume: () => void = () => undefined;
  const record = {
    status: 0,
    headers: [] as string[],
    body: '',
    done: new Promise<{ error?: Error & { code?: string } }>((resolve) => {
      settle = resolve;
    }),
    resume: () => resume(),
    handler: {
      onConnect: () => undefined,
      onHeaders: (status: number, raw: unknown[], resumeReading: () => void) => {
        record.status = status;
        record.headers = raw.map((field) => String(field));
        resume = resumeReading;
        return options.pauseAtHead !== true;
      },
      onData: (chunk: Buffer) => {
        record.body += chunk.toString('latin1');
        return true;
      },
      onComplete: () => settle({}),
      onError: (error: Error) => settle({ error }),
    },
  };
  return record;
}

const GET: Http1Request = { method: 'GET', path: '/x', headers: ['host', 'app'], body: null };

/** Requests (heads) received on one app connection so far. */
function heads(connection: RawAppConnection): string[] {
  return connection.received.split('\r\n\r\n').filter((part) => /^[A-Z]+ \//.test(part));
}

describe('HTTP/1.1 client over TCP (the inbound app hop)', () => {
  let app: RawApp | undefined;
  let client: Http1Client | undefined;
  afterEach(async () => {
    await client?.close(Date.now());
    await app?.close();
    client = undefined;
    app = undefined;
  });

  function clientFor(port: number, overrides: Partial<Http1TcpOptions> = {}) {
    client = new Http1Client({
      host: '127.0.0.1',
      port,
      maxConnections: 4,
      timeoutMs: 30_000,
      connectTimeoutMs: 10_000,
      keepAliveMs: 60_000,
      ...overrides,
    });
    return client;
  }

  /** An app that answers every complete request head on a connection with `answer`. */
  async function answering(answer: string | ((connection: RawAppConnection) => string)): Promise<RawApp> {
    const answered = new WeakMap<RawAppConnection, number>();
    app = await startRawApp((connection) => {
      const count = heads(connection).length;
      for (let i = answered.get(connection) ?? 0; i < count; i++) {
        connection.socket.write(typeof answer === 'string' ? answer : answer(connection));
      }
      answered.set(connection, count);
    });
    return app;
  }

  it('ok/requests one after another share one connection; the head is one write with the given fields', async () => {
    const raw = await answering('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    const c = clientFor(raw.port);
    for (let i = 0; i < 3; i++) {
      const r = recorder();
      c.dispatch(GET, r.handler);
      expect(await r.done).toEqual({});
      expect([r.status, r.body]).toEqual([200, 'ok']);
    }
    expect(raw.connections).toHaveLength(1);
    expect(heads(raw.connections[0] as RawAppConnection)).toEqual(Array(3).fill('GET /x HTTP/1.1\r\nhost: app'));
  });

  it('ok/an idle connection past the time its server announced is closed without a request asking (the sweep)', async () => {
    // timeout=3: kept 1 s (less the 2 s margin). The sweep runs only while a connection idles, so the second round
    // checks that it starts again once the first one stopped with no idle connection left.
    const raw = await answering('HTTP/1.1 200 OK\r\nkeep-alive: timeout=3\r\ncontent-length: 1\r\n\r\na');
    const c = clientFor(raw.port);
    for (let round = 0; round < 2; round++) {
      const r = recorder();
      c.dispatch(GET, r.handler);
      expect(await r.done).toEqual({});
      const connection = raw.connections[round] as RawAppConnection;
      expect(await eventually(() => connection.closed, 10_000)).toBe(true);
      expect(connection.ended).toBe(true); // a FIN, not a reset
    }
    expect(raw.connections).toHaveLength(2);
  });

  it('ok/a request without Host gets the app address as its Host', async () => {
    const raw = await answering('HTTP/1.1 204 No Content\r\n\r\n');
    const c = clientFor(raw.port);
    const r = recorder();
    c.dispatch({ ...GET, headers: ['accept', '*/*'] }, r.handler);
    expect(await r.done).toEqual({});
    expect(raw.connections[0]?.received).toBe(`GET /x HTTP/1.1\r\naccept: */*\r\nhost: 127.0.0.1:${raw.port}\r\n\r\n`);
  });

  it.each([
    ['Keep-Alive: timeout=5 (kept: 5 s less the 2 s margin)', 'keep-alive: timeout=5\r\n', 1],
    ['Keep-Alive: timeout=2 (no more than the margin: not kept)', 'keep-alive: timeout=2\r\n', 2],
    ['Connection: close', 'connection: close\r\n', 2],
  ])('ok/the server says %s', async (_name, field, connections) => {
    const raw = await answering(`HTTP/1.1 200 OK\r\n${field}content-length: 1\r\n\r\na`);
    const c = clientFor(raw.port);
    for (let i = 0; i < 2; i++) {
      const r = recorder();
      c.dispatch(GET, r.handler);
      expect(await r.done).toEqual({});
    }
    expect(raw.connections).toHaveLength(connections);
  });

  it('ok/never more connections than maxConnections; the rest wait and go in arrival order', async () => {
    const raw = await startRawApp();
    app = raw;
    const c = clientFor(raw.port, { maxConnections: 2 });
    const records = Array.from({ length: 5 }, () => recorder());
    records.forEach((r, i) => {
      c.dispatch({ ...GET, path: `/${i}` }, r.handler);
    });
    const answered = new Map<RawAppConnection, number>();
    const unanswered = () => raw.connections.find((k) => heads(k).length > (answered.get(k) ?? 0));
    const order: string[] = [];
    // Each request head answered as it arrives, one at a time: five in all, over the two connections.
    for (let round = 0; round < 5; round++) {
      await eventually(() => unanswered() !== undefined);
      const connection = unanswered() as RawAppConnection;
      const n = answered.get(connection) ?? 0;
      order.push((heads(connection)[n] as string).split(' ')[1] as string);
      answered.set(connection, n + 1);
      connection.socket.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
    }
    for (const r of records) expect(await r.done).toEqual({});
    expect(raw.connections).toHaveLength(2);
    expect(c.open).toBe(2);
    expect(order.slice(2)).toEqual(['/2', '/3', '/4']);
  });

  it('ok/while a connection settles after an answer it holds one waiting request; the next ones get connections of their own', async () => {
    const raw = await answering((connection) =>
      connection.received.endsWith('GET /long HTTP/1.1\r\nhost: app\r\n\r\n')
        ? ''
        : 'HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n',
    );
    const c = clientFor(raw.port, { maxConnections: 4 });
    const first = recorder();
    c.dispatch({ ...GET, path: '/first' }, first.handler);
    expect(await first.done).toEqual({});
    // Its connection settles now: /long (never answered) waits for it, /short must not wait behind /long.
    const long = recorder();
    const short = recorder();
    c.dispatch({ ...GET, path: '/long' }, long.handler);
    c.dispatch({ ...GET, path: '/short' }, short.handler);
    expect(await short.done).toEqual({});
    expect(raw.connections).toHaveLength(2);
    expect(c.open).toBe(2);
  });

  it('fail/an app that sends two answers to one request: the second reaches no other request, the connection is dropped', async () => {
    let n = 0;
    const raw = await answering(() => {
      n++;
      return n === 1
        ? 'HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nAHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nstray'
        : 'HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nC';
    });
    const c = clientFor(raw.port, { maxConnections: 1 });
    const first = recorder();
    const second = recorder();
    c.dispatch(GET, first.handler);
    c.dispatch(GET, second.handler); // waits for the one connection
    expect(await first.done).toEqual({});
    expect(first.body).toBe('A');
    expect(await second.done).toEqual({});
    expect(second.body).toBe('C');
    expect(raw.connections).toHaveLength(2);
    await eventually(() => raw.connections[0]?.closed === true);
  });

  it.each([
    ['waiting for the connection', true],
    ['sent later on the idle connection', false],
  ])(
    'fail/an answer followed by the start of another head: the next request (%s) gets its own answer on a new connection',
    async (_name, waiting) => {
      const forged = 'HTTP/1.1 302 Found\r\nlocation: https://elsewhere.example/\r\nset-cookie: s=1\r\nx-pad: ';
      const raw = await answering((connection) =>
        connection.received.includes('GET /first ') && heads(connection).length === 1
          ? `HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nA${forged}`
          : 'HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\ngood',
      );
      const c = clientFor(raw.port, { maxConnections: 1 });
      const first = recorder();
      const next = recorder();
      c.dispatch({ ...GET, path: '/first' }, first.handler);
      if (waiting) c.dispatch({ ...GET, path: '/next' }, next.handler);
      expect(await first.done).toEqual({});
      if (!waiting) {
        await eventually(() => raw.connections[0]?.closed === true);
        c.dispatch({ ...GET, path: '/next' }, next.handler);
      }
      expect(await next.done).toEqual({});
      expect([next.status, next.body]).toEqual([200, 'good']);
      expect(raw.connections).toHaveLength(2);
      expect(raw.connections[0]?.received.includes('/next')).toBe(false);
    },
  );

  it('fail/an answer then the app closes without saying so: the waiting request is not written to the closing connection', async () => {
    let n = 0;
    const raw = await answering((connection) => {
      n++;
      // The close goes out as its own segment, after the answer, as an app closing right after answering sends it.
      if (n === 1) setImmediate(() => connection.socket.end());
      return 'HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n';
    });
    const c = clientFor(raw.port, { maxConnections: 1 });
    const first = recorder();
    const next = recorder();
    c.dispatch(GET, first.handler);
    c.dispatch(GET, next.handler);
    expect(await first.done).toEqual({});
    expect(await next.done).toEqual({});
    expect(next.status).toBe(200);
    expect(heads(raw.connections[0] as RawAppConnection)).toHaveLength(1);
  });

  it('fail/a handler that throws while it takes the answer fails that exchange only; the process goes on', async () => {
    const raw = await answering('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    const c = clientFor(raw.port);
    let failed: Error | undefined;
    c.dispatch(GET, {
      onConnect: () => undefined,
      onHeaders: () => {
        throw new Error('the caller cannot take this head');
      },
      onError: (error: Error) => {
        failed = error;
      },
    });
    await eventually(() => failed !== undefined);
    expect(failed?.message).toBe('the caller cannot take this head');
    const after = recorder();
    c.dispatch(GET, after.handler);
    expect(await after.done).toEqual({});
    expect(after.body).toBe('ok');
  });

  it('ok/thousands of requests dropped while they waited are walked past without recursion', async () => {
    const raw = await startRawApp();
    app = raw;
    const c = clientFor(raw.port, { maxConnections: 1 });
    const first = recorder();
    c.dispatch(GET, first.handler);
    const headsSeen = () => (raw.connections[0] === undefined ? 0 : heads(raw.connections[0]).length);
    await eventually(() => headsSeen() === 1);
    let dropped = 0;
    for (let i = 0; i < 20_000; i++) {
      // As ForwardHandler.onConnect does for a caller that left while its request waited.
      c.dispatch(GET, {
        onConnect: () => {
          dropped++;
          throw new Error('downstream closed');
        },
        onError: () => undefined,
      });
    }
    const last = recorder();
    c.dispatch(GET, last.handler);
    raw.connections[0]?.socket.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
    expect(await first.done).toEqual({});
    await eventually(() => headsSeen() === 2);
    raw.connections[0]?.socket.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
    expect(await last.done).toEqual({});
    expect(dropped).toBe(20_000);
  });

  it('fail/bytes from the app between requests: the connection is not used again', async () => {
    const raw = await answering('HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na');
    const c = clientFor(raw.port);
    const first = recorder();
    c.dispatch(GET, first.handler);
    expect(await first.done).toEqual({});
    raw.connections[0]?.socket.write('HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nbad');
    await eventually(() => raw.connections[0]?.closed === true);
    const second = recorder();
    c.dispatch(GET, second.handler);
    expect(await second.done).toEqual({});
    expect(second.body).toBe('a');
    expect(raw.connections).toHaveLength(2);
  });

  it('ok/a body without Content-Length goes chunked; one with it goes as it is', async () => {
    const raw = await answering('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
    const c = clientFor(raw.port);
    const chunked = recorder();
    c.dispatch(
      {
        method: 'POST',
        path: '/u',
        headers: ['host', 'app'],
        body: Readable.from([Buffer.from('abc'), Buffer.from('de')]),
      },
      chunked.handler,
    );
    expect(await chunked.done).toEqual({});
    const framed = recorder();
    c.dispatch(
      {
        method: 'PUT',
        path: '/u',
        headers: ['host', 'app', 'content-length', '3'],
        body: Readable.from([Buffer.from('xyz')]),
      },
      framed.handler,
    );
    expect(await framed.done).toEqual({});
    expect(raw.connections).toHaveLength(1);
    expect(raw.connections[0]?.received).toBe(
      'POST /u HTTP/1.1\r\nhost: app\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n' +
        'PUT /u HTTP/1.1\r\nhost: app\r\ncontent-length: 3\r\n\r\nxyz',
    );
  });

  it('fail/a body cut before its end: the app connection is closed without the terminating chunk, the exchange fails', async () => {
    app = await startRawApp();
    const c = clientFor(app.port);
    const body = new PassThrough();
    const r = recorder();
    c.dispatch({ method: 'POST', path: '/u', headers: ['host', 'app'], body }, r.handler);
    body.write('part');
    await eventually(() => app?.connections[0]?.received.includes('part') === true);
    body.destroy(new Error('caller reset'));
    expect((await r.done).error?.message).toBe('caller reset');
    await eventually(() => app?.connections[0]?.closed === true);
    // The bytes that arrived and no more: no chunk is closed, no terminating chunk.
    expect(app.connections[0]?.received.endsWith('\r\n\r\n4\r\npart')).toBe(true);
  });

  it('ok/an answer before the body ended completes the exchange, drops the rest of the body and closes the connection (never reused mid-body)', async () => {
    app = await startRawApp((connection) => {
      if (connection.received.includes('first'))
        connection.socket.write('HTTP/1.1 413 Too Big\r\ncontent-length: 0\r\n\r\n');
    });
    const c = clientFor(app.port);
    const body = new PassThrough();
    const r = recorder();
    c.dispatch({ method: 'POST', path: '/u', headers: ['host', 'app'], body }, r.handler);
    body.write('first');
    expect(await r.done).toEqual({});
    expect(r.status).toBe(413);
    await eventually(() => app?.connections[0]?.closed === true);
    // The rest of the body is not wanted: destroyed, as undici does (a node:http request unhooked from its socket).
    expect(body.destroyed).toBe(true);
    const next = recorder();
    c.dispatch(GET, next.handler);
    await eventually(() => app?.connections.length === 2);
    app.connections[1]?.socket.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
    expect(await next.done).toEqual({});
  });

  it('ok/a node:http request body dropped after an early answer: destroyed without its caller’s connection, which it still names', async () => {
    app = await startRawApp((connection) => {
      if (connection.received.includes('first'))
        connection.socket.write('HTTP/1.1 413 Too Big\r\ncontent-length: 0\r\n\r\n');
    });
    const c = clientFor(app.port);
    const r = recorder();
    let caller: IncomingMessage | undefined;
    const front = createServer((req) => {
      caller = req;
      c.dispatch({ method: 'POST', path: '/u', headers: ['host', 'app'], body: req }, r.handler);
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    const socket = connect((front.address() as AddressInfo).port, '127.0.0.1');
    socket.on('error', () => undefined);
    try {
      socket.write('POST /u HTTP/1.1\r\nhost: front\r\ncontent-length: 100\r\n\r\nfirst');
      expect(await r.done).toEqual({});
      const req = caller as IncomingMessage;
      expect(req.destroyed).toBe(true);
      // The listener closes the connection behind its answer once written, reading `req.socket` then.
      expect(req.socket).not.toBeNull();
      expect(req.socket.destroyed).toBe(false);
    } finally {
      socket.destroy();
      front.closeAllConnections();
      await new Promise((resolve) => front.close(resolve));
    }
  });

  it('ok/informational answers (asked for or not) are skipped; HEAD has no body; an answer may end with the connection', async () => {
    let n = 0;
    const raw = await answering(() => {
      n++;
      if (n === 1) {
        return (
          'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n' +
          'HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nz'
        );
      }
      if (n === 2) return 'HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n';
      return 'HTTP/1.1 200 OK\r\n\r\nuntil the end';
    });
    const c = clientFor(raw.port);
    const hinted = recorder();
    c.dispatch(GET, hinted.handler);
    expect(await hinted.done).toEqual({});
    expect([hinted.status, hinted.body]).toEqual([200, 'z']);
    const head = recorder();
    c.dispatch({ ...GET, method: 'HEAD' }, head.handler);
    expect(await head.done).toEqual({});
    expect([head.status, head.headers, head.body]).toEqual([200, ['content-length', '9'], '']);
    // A HEAD answer that states a length is not kept: an app that sends the body anyway would answer the next request
    // with it (http1-client-stray-answers.test.ts). The next request has a connection of its own.
    const delimited = recorder();
    c.dispatch(GET, delimited.handler);
    await eventually(() => delimited.body === 'until the end');
    raw.connections[1]?.socket.end();
    expect(await delimited.done).toEqual({});
    expect(raw.connections).toHaveLength(2);
  });

  it('fail/an answer of 2,001 short header fields (under 16 KiB of head) → a malformed answer, the connection closed', async () => {
    // Passed on, a head like this reached the next hop's HTTP/2 session limit (2,048 fields) and was reset there: the
    // caller got 503, which reads as safe to retry, for a request the app had processed.
    const fields = Array.from({ length: 2_001 }, (_, i) => `${i.toString(36)}:1\r\n`).join('');
    const raw = await answering(`HTTP/1.1 200 OK\r\n${fields}content-length: 2\r\n\r\nok`);
    const r = recorder();
    clientFor(raw.port).dispatch(GET, r.handler);
    expect((await r.done).error?.code).toBe('HPE_HEADER_OVERFLOW');
    expect(r.status).toBe(0);
    await eventually(() => raw.connections[0]?.closed === true);
  });

  it.each(['000', '099'])('fail/status %s → a malformed answer, not an interim one to skip', async (status) => {
    const raw = await answering(`HTTP/1.1 ${status} X\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok`);
    const r = recorder();
    clientFor(raw.port).dispatch(GET, r.handler);
    expect((await r.done).error?.code).toBe('HPE_INVALID_STATUS');
    expect(r.status).toBe(0);
  });

  it('ok/an answer of 1,999 header fields → passed on', async () => {
    const fields = Array.from({ length: 1_998 }, (_, i) => `${i.toString(36)}:1\r\n`).join('');
    const raw = await answering(`HTTP/1.1 200 OK\r\n${fields}content-length: 2\r\n\r\nok`);
    const r = recorder();
    clientFor(raw.port).dispatch(GET, r.handler);
    expect(await r.done).toEqual({});
    expect([r.status, r.headers.length / 2, r.body]).toEqual([200, 1_999, 'ok']);
  });

  it('fail/an app that switches protocols unasked (101): the exchange fails as a bad answer, the connection is closed', async () => {
    const raw = await answering('HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\nconnection: upgrade\r\n\r\n');
    const r = recorder();
    clientFor(raw.port).dispatch(GET, r.handler);
    expect((await r.done).error?.code).toBe('HPE_UNEXPECTED_UPGRADE');
    expect(r.status).toBe(0);
    await eventually(() => raw.connections[0]?.closed === true);
  });

  it.each([
    ['alone', 'HTTP/1.1 101 Switching Protocols\r\n\r\n'],
    [
      'with an answer after it in the same write',
      'HTTP/1.1 101 Switching Protocols\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok',
    ],
  ])(
    'fail/a 101 without Upgrade fields (%s) fails at once as a bad answer: llhttp reads nothing after a 101',
    async (_name, answer) => {
      // It used to be skipped as an informational answer, after which llhttp read nothing more: the exchange waited for
      // its head timeout (a 504 half a minute later) and an answer after it was dropped.
      const raw = await answering(answer);
      const r = recorder();
      clientFor(raw.port).dispatch(GET, r.handler);
      expect((await r.done).error?.code).toBe('HPE_UNEXPECTED_UPGRADE');
      expect([r.status, r.body]).toEqual([0, '']);
      await eventually(() => raw.connections[0]?.closed === true);
    },
  );

  it('fail/a body cut while its request waited for a connection: nothing of it is written, the exchange fails', async () => {
    const raw = await startRawApp();
    app = raw;
    const c = clientFor(raw.port, { maxConnections: 1 });
    const first = recorder();
    c.dispatch(GET, first.handler);
    await eventually(() => raw.connections[0]?.received.includes('\r\n\r\n') === true);
    const body = new PassThrough();
    body.on('error', () => undefined);
    const cut = recorder();
    c.dispatch({ method: 'POST', path: '/cut', headers: ['host', 'app'], body }, cut.handler);
    body.destroy(new Error('caller reset while waiting'));
    const next = recorder();
    c.dispatch({ ...GET, path: '/next' }, next.handler);
    raw.connections[0]?.socket.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
    expect(await first.done).toEqual({});
    expect((await cut.done).error?.message).toBe('caller reset while waiting');
    await eventually(() => raw.connections[0]?.received.includes('GET /next ') === true);
    raw.connections[0]?.socket.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
    expect(await next.done).toEqual({});
    expect(raw.connections[0]?.received.includes('/cut')).toBe(false);
    expect(raw.connections).toHaveLength(1);
  });

  it('fail/an informational answer that claims a body: its bytes never reach the caller, the exchange fails as a bad answer', async () => {
    const raw = await answering(
      'HTTP/1.1 150 Odd\r\ncontent-length: 5\r\n\r\nleakHTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n',
    );
    const r = recorder();
    clientFor(raw.port).dispatch(GET, r.handler);
    expect((await r.done).error?.code).toMatch(/^HPE_/);
    expect([r.status, r.body]).toEqual([0, '']);
  });

  it.each([
    ['no head in time', '', 'UND_ERR_HEADERS_TIMEOUT'],
    ['the body stalls', 'HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf', 'UND_ERR_BODY_TIMEOUT'],
  ])(
    'fail/%s: the exchange fails with undici’s code for it and the connection is closed',
    async (_name, partial, code) => {
      const raw = await answering(partial);
      const c = clientFor(raw.port, { timeoutMs: 300 });
      const r = recorder();
      c.dispatch(GET, r.handler);
      expect((await r.done).error?.code).toBe(code);
      await eventually(() => raw.connections[0]?.closed === true);
    },
  );

  it('fail/the app closes mid-answer or before one: UND_ERR_SOCKET; a refused connect: its errno', async () => {
    const raw = await answering((connection) => {
      setImmediate(() => connection.socket.destroy());
      return 'HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf';
    });
    const c = clientFor(raw.port);
    const cut = recorder();
    c.dispatch(GET, cut.handler);
    expect((await cut.done).error?.code).toBe('UND_ERR_SOCKET');
    expect(cut.body).toBe('half');
    const port = raw.port;
    await raw.close();
    app = undefined;
    const refused = recorder();
    clientFor(port).dispatch(GET, refused.handler);
    expect((await refused.done).error?.code).toBe('ECONNREFUSED');
  });

  it('fail/an answer the parser refuses fails with llhttp’s code (classified as a bad answer)', async () => {
    const raw = await answering('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n');
    const r = recorder();
    clientFor(raw.port).dispatch(GET, r.handler);
    expect((await r.done).error?.code).toMatch(/^HPE_/);
  });

  it('ok/backpressure: a handler that pauses at the head gets the body once it resumes', async () => {
    const raw = await answering('HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nbody');
    const r = recorder({ pauseAtHead: true });
    clientFor(raw.port).dispatch(GET, r.handler);
    await eventually(() => r.status === 200);
    r.resume();
    expect(await r.done).toEqual({});
    expect(r.body).toBe('body');
  });

  it('ok/close() lets a request in flight finish, then refuses new ones', async () => {
    app = await startRawApp();
    const c = clientFor(app.port);
    const r = recorder();
    c.dispatch(GET, r.handler);
    await eventually(() => app?.connections[0]?.received.includes('\r\n\r\n') === true);
    const closed = c.close(Date.now() + 10_000);
    const late = recorder();
    c.dispatch(GET, late.handler);
    expect((await late.done).error?.code).toBe('UND_ERR_CLOSED');
    app.connections[0]?.socket.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
    expect(await r.done).toEqual({});
    await closed;
    await eventually(() => app?.connections[0]?.closed === true);
    expect(c.open).toBe(0);
  });
});

/** A TCP connection to 127.0.0.1:`port`, resolved once connected (as the mesh hop's dial hands over its TLS socket). */
function dialTcp(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, noDelay: true });
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

/** A promise and the call that settles it: a dial held until the test lets it through. */
function gate(): { readonly open: Promise<void>; release(): void } {
  let release: () => void = () => undefined;
  const open = new Promise<void>((resolve) => {
    release = resolve;
  });
  return { open, release: () => release() };
}

describe('HTTP/1.1 client over a connector (the outbound mesh hop)', () => {
  let app: RawApp | undefined;
  let client: Http1Client | undefined;
  afterEach(async () => {
    await client?.close(Date.now());
    await app?.close();
    client = undefined;
    app = undefined;
  });

  function connectorClient(connect: () => Promise<Socket>, maxConnections = 4): Http1Client {
    client = new Http1Client({
      authority: 'b.mesh:443',
      connect,
      maxConnections,
      timeoutMs: 30_000,
      keepAliveMs: 60_000,
    });
    return client;
  }

  /** A raw app answering each request head with an empty 200, and its connection count. */
  async function answeringApp(): Promise<RawApp> {
    const answered = new WeakMap<RawAppConnection, number>();
    app = await startRawApp((connection) => {
      const count = heads(connection).length;
      for (let i = answered.get(connection) ?? 0; i < count; i++) {
        connection.socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      }
      answered.set(connection, count);
    });
    return app;
  }

  it('fail/a server that answers before it is asked: the bytes answer nothing, the request fails unwritten, the connection is closed', async () => {
    // A dialled socket may hold bytes its server sent right after the handshake; parsed once the request is written,
    // they were taken for its answer.
    app = await startRawApp(() => undefined);
    const raw = app;
    const c = connectorClient(async () => {
      const socket = await dialTcp(raw.port);
      await eventually(() => raw.connections.length === 1);
      raw.connections[0]?.socket.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nearly');
      await eventually(() => socket.readableLength > 0);
      return socket;
    });
    const r = recorder();
    c.dispatch(GET, r.handler);
    const { error } = await r.done;
    expect([error?.code, error?.message]).toEqual(['HPE_INVALID_CONSTANT', 'the server sent bytes before the request']);
    expect([r.status, r.body]).toEqual([0, '']);
    await eventually(() => raw.connections[0]?.closed === true);
    expect(raw.connections[0]?.received).toBe('');
  });

  it('fail/a failed dial: the request’s onError gets that very error, its body untouched; the next request dials again', async () => {
    const failure = new Error('peer unreachable');
    let dials = 0;
    const c = connectorClient(() => {
      dials++;
      return Promise.reject(failure);
    });
    const body = new PassThrough();
    body.write('abc');
    const r = recorder();
    c.dispatch({ method: 'POST', path: '/u', headers: ['host', 'b.mesh'], body }, r.handler);
    expect((await r.done).error).toBe(failure);
    expect([body.readableDidRead, body.destroyed, body.readableLength]).toEqual([false, false, 3]);
    expect(c.open).toBe(0);
    const again = recorder();
    c.dispatch(GET, again.handler);
    expect((await again.done).error).toBe(failure);
    expect(dials).toBe(2);
  });

  it('ok/the dialled socket is used as it comes: the handler is connected once the dial resolved; later requests reuse it', async () => {
    const raw = await answeringApp();
    const dial = gate();
    let dials = 0;
    const c = connectorClient(async () => {
      dials++;
      await dial.open;
      return dialTcp(raw.port);
    });
    let connected = false;
    const first = recorder();
    c.dispatch(
      { ...GET, headers: ['accept', '*/*'] },
      {
        ...first.handler,
        onConnect: () => {
          connected = true;
        },
      },
    );
    await new Promise((resolve) => setImmediate(resolve));
    expect([connected, c.open]).toEqual([false, 1]);
    dial.release();
    expect(await first.done).toEqual({});
    expect(connected).toBe(true);
    const second = recorder();
    c.dispatch(GET, second.handler);
    expect(await second.done).toEqual({});
    expect([dials, raw.connections.length]).toEqual([1, 1]);
    // A request without Host gets the client's authority.
    expect(heads(raw.connections[0] as RawAppConnection)).toEqual([
      'GET /x HTTP/1.1\r\naccept: */*\r\nhost: b.mesh:443',
      'GET /x HTTP/1.1\r\nhost: app',
    ]);
  });

  it('ok/a request whose caller left while it waited for the dial is dropped unsent (its onError told); the connection serves the next', async () => {
    const raw = await answeringApp();
    const dial = gate();
    const c = connectorClient(async () => {
      await dial.open;
      return dialTcp(raw.port);
    }, 1);
    let told: Error | undefined;
    c.dispatch(GET, {
      onConnect: () => {
        throw new Error('downstream closed'); // as ForwardHandler.onConnect for a caller that left
      },
      onError: (error: Error) => {
        told = error;
      },
    });
    const next = recorder();
    c.dispatch({ ...GET, path: '/next' }, next.handler);
    dial.release();
    expect(await next.done).toEqual({});
    expect(told?.message).toBe('downstream closed');
    expect(raw.connections).toHaveLength(1);
    expect(heads(raw.connections[0] as RawAppConnection)).toEqual(['GET /next HTTP/1.1\r\nhost: app']);
  });

  it('ok/close() without a deadline (a retired client): the request in flight finishes, new ones are refused, then its connection closes', async () => {
    app = await startRawApp();
    const port = app.port;
    const c = connectorClient(() => dialTcp(port));
    const r = recorder();
    c.dispatch(GET, r.handler);
    await eventually(() => app?.connections[0]?.received.endsWith('\r\n\r\n') === true);
    const closed = c.close(Number.POSITIVE_INFINITY);
    const late = recorder();
    c.dispatch(GET, late.handler);
    expect((await late.done).error?.code).toBe('UND_ERR_CLOSED');
    app.connections[0]?.socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    expect(await r.done).toEqual({});
    expect(r.body).toBe('ok');
    await closed;
    expect(c.open).toBe(0);
    await eventually(() => app?.connections[0]?.closed === true);
  });

  it('fail/close() again with an earlier deadline: what is still in flight at that deadline is cut', async () => {
    app = await startRawApp();
    const port = app.port;
    const c = connectorClient(() => dialTcp(port));
    const r = recorder();
    c.dispatch(GET, r.handler);
    await eventually(() => app?.connections[0]?.received.endsWith('\r\n\r\n') === true);
    const retired = c.close(Number.POSITIVE_INFINITY);
    const closing = c.close(Date.now() + 50);
    expect(closing).toBe(retired);
    await closing;
    expect((await r.done).error?.code).toBe('UND_ERR_SOCKET');
    await eventually(() => c.open === 0 && app?.connections[0]?.closed === true);
  });

  it('fail/a dial that completes after the close deadline: its socket is closed unused, its request fails as closed', async () => {
    app = await startRawApp();
    const port = app.port;
    const dial = gate();
    const c = connectorClient(async () => {
      await dial.open;
      return dialTcp(port);
    });
    const r = recorder();
    c.dispatch(GET, r.handler);
    await c.close(Date.now());
    dial.release();
    expect((await r.done).error?.code).toBe('UND_ERR_CLOSED');
    await eventually(() => app?.connections[0]?.closed === true);
    expect(app.connections[0]?.received).toBe('');
    expect(c.open).toBe(0);
  });
});
