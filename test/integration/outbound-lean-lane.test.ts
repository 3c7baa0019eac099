// The outbound's lean lane (src/sidecar/lean-lane.ts) on real sockets: which requests it serves itself and
// which it hands to node:http with every byte intact, and that its answers are byte for byte what node:http's
// ServerResponse writes for the same head and body. The whole outbound suite runs through it as well; these cases
// pin the lane's own decisions, which the suite cannot see (node:http answers the handed-over ones the same way).
import { createServer as createHttpServer, type ServerResponse } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { MeshauthError } from '../../src/errors/index.js';
import { writeErrorH1 } from '../../src/sidecar/error-response.js';
import { type FastRequest, type LeanLane, LeanResponse, leanLane } from '../../src/sidecar/lean-lane.js';
import { OUTBOUND_LIMITS } from '../../src/sidecar/outbound/outbound-listener.js';
import { startApp, startTestSidecar, testConfig } from '../helpers/sidecar-harness.js';
import { type RawClient, rawClient } from '../helpers/tcp-client.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

const DATE = 'Sat, 05 Dec 2026 23:00:00 GMT';

interface Lane {
  readonly port: number;
  readonly served: FastRequest[];
  /** The bytes each handed-over connection started with. */
  readonly handedOver: Buffer[];
  readonly lanes: LeanLane[];
  /** What the next served request is answered with (default: 200 `ok`). */
  answer: (res: LeanResponse) => void;
  /** False: the next served request is declined (handed over). */
  accept: boolean;
  /** Connections with no whole head within headersTimeoutMs. */
  timedOut: number;
  /** The codes of the heads the lane gave up on (headFailed), in order. */
  readonly failed: string[];
}

const servers: Server[] = [];
const clients: RawClient[] = [];
/** The lane's own ends, destroyed after each case: one may still owe an answer the case never wrote. */
const accepted: Socket[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.socket.destroy();
  for (const socket of accepted.splice(0)) socket.destroy();
  await Promise.all(servers.splice(0).map((server) => new Promise((done) => server.close(done))));
});

async function lane(
  headersTimeoutMs = 10_000,
  keepAliveTimeoutMs: number = OUTBOUND_LIMITS.keepAliveTimeoutMs,
): Promise<Lane & { readonly headersTimeoutMs: number }> {
  const state = {
    headersTimeoutMs,
    timedOut: 0,
    failed: [],
    port: 0,
    served: [],
    handedOver: [],
    lanes: [],
    answer: (res: LeanResponse) => {
      res.writeHead(200, ['content-length', '2', 'date', DATE]);
      res.end('ok');
    },
    accept: true,
  } as Lane & { readonly headersTimeoutMs: number };
  const server = createServer({ allowHalfOpen: true }, (socket: Socket) => {
    accepted.push(socket);
    socket.on('error', () => undefined);
    const handle = leanLane(
      socket,
      {
        serve: (request, res) => {
          if (!state.accept) return false;
          state.served.push(request);
          state.answer(res);
          return true;
        },
        handOff: (handed, bytes) => {
          state.handedOver.push(bytes);
          handed.destroy();
        },
        headFailed: (silent, error) => {
          if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') state.timedOut += 1;
          state.failed.push(error.code);
          silent.destroy();
        },
      },
      { ...OUTBOUND_LIMITS, headersTimeoutMs: state.headersTimeoutMs, keepAliveTimeoutMs },
    );
    state.lanes.push(handle);
  });
  servers.push(server);
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return Object.assign(state, { port: (server.address() as { port: number }).port });
}

/** From now on the lane's requests are held unanswered, in this list, for the case to answer. */
function holdAnswers(l: Lane): LeanResponse[] {
  const held: LeanResponse[] = [];
  l.answer = (res) => held.push(res);
  return held;
}

async function client(port: number): Promise<RawClient> {
  const c = await rawClient(port, { allowHalfOpen: true });
  clients.push(c);
  return c;
}

const GET = 'GET http://orders.shop/orders/42 HTTP/1.1\r\nHost: orders.shop\r\nAccept: */*\r\n\r\n';

describe('the lean lane: what it serves itself', () => {
  it('ok/a whole bodiless GET and then a HEAD on one keep-alive connection', async () => {
    const l = await lane();
    const c = await client(l.port);
    c.socket.write(GET);
    await waitFor('the first answer', () => c.received().includes('ok'));
    c.socket.write('HEAD /x HTTP/1.1\r\nHost: orders.shop\r\n\r\n');
    await waitFor('the second request', () => l.served.length === 2);
    expect(l.served.map((r) => [r.method, r.url])).toEqual([
      ['GET', 'http://orders.shop/orders/42'],
      ['HEAD', '/x'],
    ]);
    expect(l.served[0]?.raw).toEqual(['Host', 'orders.shop', 'Accept', '*/*']);
    expect(l.handedOver).toEqual([]);
  });

  it('ok/a request pipelined while an answer is due waits for it, then is served in order', async () => {
    const l = await lane();
    const held = holdAnswers(l);
    const c = await client(l.port);
    c.socket.write(GET);
    await waitFor('the first request', () => l.served.length === 1);
    c.socket.write('GET /second HTTP/1.1\r\nHost: orders.shop\r\n\r\n');
    // Not read while the first answer is due.
    const first = held[0] as LeanResponse;
    first.writeHead(200, ['content-length', '1', 'date', DATE]);
    first.end('1');
    await waitFor('the second request', () => l.served.length === 2);
    expect(l.served[1]?.url).toBe('/second');
  });
});

describe('the lean lane: what it hands to node:http, with every byte', () => {
  const cases: Array<[string, string]> = [
    ['a body', 'POST /orders HTTP/1.1\r\nHost: orders.shop\r\nContent-Length: 2\r\n\r\nhi'],
    ['a GET announcing a body', 'GET / HTTP/1.1\r\nHost: orders.shop\r\nContent-Length: 0\r\n\r\n'],
    ['a chunked GET', 'GET / HTTP/1.1\r\nHost: orders.shop\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['Expect', 'GET / HTTP/1.1\r\nHost: orders.shop\r\nExpect: 100-continue\r\n\r\n'],
    ['HTTP/1.0', 'GET / HTTP/1.0\r\nHost: orders.shop\r\n\r\n'],
    ['Connection: close', 'GET / HTTP/1.1\r\nHost: orders.shop\r\nConnection: close\r\n\r\n'],
    ['Upgrade', 'GET / HTTP/1.1\r\nHost: orders.shop\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n'],
    ['CONNECT', 'CONNECT db.example:5432 HTTP/1.1\r\nHost: db.example:5432\r\n\r\n'],
    ['another method', 'DELETE /orders/1 HTTP/1.1\r\nHost: orders.shop\r\n\r\n'],
    ['two pipelined heads', `${GET}${GET}`],
    ['a malformed head', 'GET / HTTP/1.1\r\nHost: orders.shop\r\nBad Header: x\r\n\r\n'],
    ['a bare LF', 'GET / HTTP/1.1\nHost: orders.shop\n\n'],
    ['more than 32 header lines', `GET / HTTP/1.1\r\n${'X-A: 1\r\n'.repeat(33)}Host: orders.shop\r\n\r\n`],
    ['a head past 16 KiB', `GET / HTTP/1.1\r\nHost: orders.shop\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`],
  ];
  it.each(cases)('fail/%s', async (_name, bytes) => {
    const l = await lane();
    const c = await client(l.port);
    c.socket.write(bytes);
    await waitFor('the hand-over', () => l.handedOver.length === 1);
    expect(Buffer.concat(l.handedOver).toString('latin1')).toBe(bytes);
    expect(l.served).toEqual([]);
  });

  it('fail/a head split over two reads: held until whole, then handed over with every byte, never served', async () => {
    const l = await lane();
    const c = await client(l.port);
    const first = 'GET / HTTP/1.1\r\nHost: ord';
    c.socket.write(first);
    await waitFor('the first part read', () => accepted[0]?.bytesRead === first.length);
    expect(l.handedOver).toEqual([]);
    c.socket.write('ers.shop\r\n\r\n');
    await waitFor('the hand-over', () => l.handedOver.length === 1);
    expect(l.handedOver[0]?.toString('latin1')).toBe(`${first}ers.shop\r\n\r\n`);
    expect(l.served).toEqual([]);
  });

  it('fail/a request the host declines (no route, not ready) is handed over whole', async () => {
    const l = await lane();
    l.accept = false;
    const c = await client(l.port);
    c.socket.write(GET);
    await waitFor('the hand-over', () => l.handedOver.length === 1);
    expect(l.handedOver[0]?.toString('latin1')).toBe(GET);
  });

  it('fail/after served requests, the first one that does not fit hands the connection over', async () => {
    const l = await lane();
    const c = await client(l.port);
    c.socket.write(GET);
    await waitFor('the first answer', () => c.received().includes('ok'));
    c.socket.write('POST / HTTP/1.1\r\nHost: orders.shop\r\nContent-Length: 1\r\n\r\nx');
    await waitFor('the hand-over', () => l.handedOver.length === 1);
    expect(l.served).toHaveLength(1);
  });
});

describe('the lean lane: its connections', () => {
  it("fail/a new connection that sends nothing is the host's once the head timeout passes", async () => {
    const l = await lane(200);
    const c = await client(l.port);
    await c.ended;
    expect(l.timedOut).toBe(1);
    expect(l.served).toEqual([]);
    expect(l.handedOver).toEqual([]);
  });

  it('fail/a head that keeps coming a line at a time gets the head timeout from the accept, not a new one at its first byte', async () => {
    // Handed to node:http at its first part, such a head got node:http's budget again from there: twice the limit.
    const l = await lane(300);
    const c = await client(l.port);
    c.socket.write('GET / HTTP/1.1\r\n');
    for (let line = 0; line < 200 && l.failed.length === 0 && l.handedOver.length === 0; line++) {
      c.socket.write(`X-Slow-${line}: 1\r\n`);
      await new Promise((tick) => setTimeout(tick, 20));
    }
    await c.ended;
    expect(l.failed).toEqual(['ERR_HTTP_REQUEST_TIMEOUT']);
    expect(l.handedOver).toEqual([]);
    expect(l.served).toEqual([]);
  });

  it('fail/a head padded with blanks llhttp does not count is refused once it holds four times maxHeaderBytes (431), not kept to its timeout', async () => {
    // The spaces before a value (and line breaks before a request) count toward no llhttp limit; the lane holds a
    // head's reads until it is whole, so without a bound of its own one client grew it for the whole head timeout.
    const l = await lane();
    const c = await client(l.port);
    c.socket.write('GET / HTTP/1.1\r\nHost: orders.shop\r\nX-Pad: ');
    const padding = ' '.repeat(4096);
    for (let i = 0; i < 64 && l.failed.length === 0 && !c.socket.destroyed; i++) {
      c.socket.write(padding);
      await new Promise((tick) => setTimeout(tick, 5));
    }
    await waitFor('the refusal', () => l.failed.length === 1);
    expect(l.failed).toEqual(['HPE_HEADER_OVERFLOW']);
    expect([l.handedOver, l.served]).toEqual([[], []]);
  });

  it('ok/a legal head of many one-character fields, in many reads, is handed over whole: its raw size is up to four times what llhttp counts', async () => {
    // 7,000 `a:b` lines: 14,000 bytes counted against the 16 KiB limit, 35,000 raw bytes (the bound was twice the limit).
    const l = await lane();
    const c = await client(l.port);
    const head = `GET / HTTP/1.1\r\nHost: orders.shop\r\n${'a:b\r\n'.repeat(7000)}\r\n`;
    for (let at = 0; at < head.length; at += 1024) {
      c.socket.write(head.slice(at, at + 1024));
      await waitFor('the read', () => (accepted[0]?.bytesRead ?? 0) === Math.min(head.length, at + 1024));
    }
    await waitFor('the hand-over', () => l.handedOver.length === 1 || l.failed.length === 1);
    expect(l.failed).toEqual([]);
    expect(l.handedOver[0]?.toString('latin1')).toBe(head);
  });

  it('ok/a SIGTERM drain hands a head still coming to node:http, which answers it and closes: the request is not dropped', async () => {
    const l = await lane();
    const c = await client(l.port);
    const first = 'GET /half HTTP/1.1\r\nHost: ord';
    c.socket.write(first);
    await waitFor('the first part read', () => accepted[0]?.bytesRead === first.length);
    for (const handle of l.lanes) handle.closeIdle();
    await waitFor('the hand-over', () => l.handedOver.length === 1);
    expect(l.handedOver[0]?.toString('latin1')).toBe(first);
    expect(l.failed).toEqual([]);
  });

  it('ok/line breaks between requests are skipped, as node:http skips them: nothing held, timed or refused', async () => {
    const l = await lane(300);
    const c = await client(l.port);
    c.socket.write(GET);
    await waitFor('the first answer', () => c.received().includes('ok'));
    c.socket.write('\r\n');
    await waitFor('the line break read', () => (accepted[0]?.bytesRead ?? 0) === GET.length + 2);
    // Held as the start of a head, the line break would have the next request handed over instead of served.
    c.socket.write(GET);
    await waitFor('the second answer', () => l.served.length === 2);
    expect([l.failed, l.handedOver]).toEqual([[], []]);
  });

  it('fail/an idle time shorter than the head timeout does not close a connection awaiting its first head without its 408', async () => {
    const l = await lane(300, 100);
    const c = await client(l.port);
    c.socket.write('GET / HTTP/1.1\r\n');
    await c.ended;
    expect(l.failed).toEqual(['ERR_HTTP_REQUEST_TIMEOUT']);
  });

  it('fail/a connection ended inside a head is failed as node:http fails it (HPE_INVALID_EOF_STATE), never served', async () => {
    const l = await lane();
    const c = await client(l.port);
    c.socket.end('GET / HTTP/1.1\r\nHost: orders.shop\r\n');
    await waitFor('the failure', () => l.failed.length === 1);
    expect(l.failed).toEqual(['HPE_INVALID_EOF_STATE']);
    expect(l.handedOver).toEqual([]);
    expect(l.served).toEqual([]);
  });

  it('fail/a closed connection leaves nothing reachable: its parser is released and its socket collected', async () => {
    // Node's HTTPParser is not collected until closed, nor anything its callbacks reach (the lane's closures hold the
    // socket): before, every connection of the outbound, served, handed over or silent, was kept for good.
    v8.setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    let collected = 0;
    const registry = new FinalizationRegistry<string>(() => {
      collected += 1;
    });
    const server = createServer({ allowHalfOpen: true }, (socket: Socket) => {
      socket.on('error', () => undefined);
      registry.register(socket, 'lane');
      leanLane(
        socket,
        {
          serve: (_request, res) => {
            res.writeHead(200, ['content-length', '2', 'date', DATE]);
            res.end('ok');
            return true;
          },
          handOff: (handed) => handed.destroy(),
          headFailed: (silent) => silent.destroy(),
        },
        OUTBOUND_LIMITS,
      );
    });
    servers.push(server);
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const port = (server.address() as { port: number }).port;
    const COUNT = 30;
    for (let i = 0; i < COUNT; i++) {
      const c = await rawClient(port, { allowHalfOpen: true });
      if (i % 3 === 0) {
        c.socket.write(GET);
        await waitFor('the answer', () => c.received().includes('ok'));
      } else if (i % 3 === 1) c.socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx');
      c.socket.destroy();
      await c.closed;
    }
    await waitFor("the lane's sockets collected", async () => {
      gc();
      await new Promise((done) => setTimeout(done, 20));
      return collected >= COUNT - 3;
    });
  });

  it('ok/closeIdle ends an idle connection at once and leaves one with an answer due until it is written', async () => {
    const l = await lane();
    const idle = await client(l.port);
    idle.socket.write(GET);
    await waitFor('the first answer', () => idle.received().includes('ok'));
    const held = holdAnswers(l);
    const busy = await client(l.port);
    busy.socket.write(GET);
    await waitFor('the busy request', () => held.length === 1);
    for (const handle of l.lanes) handle.closeIdle();
    await idle.ended;
    expect(busy.socket.destroyed).toBe(false);
    const res = held[0] as LeanResponse;
    res.writeHead(200, ['content-length', '2', 'date', DATE, 'connection', 'close']);
    res.end('ok');
    await busy.ended;
    expect(busy.received().toString('latin1')).toContain('connection: close\r\n');
  });

  it('fail/after an answer that closes (a drain), a request sent behind it is neither served nor handed over', async () => {
    // The app's keep-alive client may send its next request as soon as the answer arrives: it reached the peer's app
    // (a GET in the lane, a POST through node:http) with nowhere left to answer, and a POST might be sent again.
    const l = await lane();
    const held = holdAnswers(l);
    const c = await client(l.port);
    c.socket.write(GET);
    await waitFor('the request', () => held.length === 1);
    for (const handle of l.lanes) handle.closeIdle(); // the drain: this connection closes after its answer
    const res = held[0] as LeanResponse;
    res.writeHead(200, ['content-length', '2', 'date', DATE]);
    res.end('ok');
    await waitFor('the answer', () => c.received().includes('\r\n\r\nok'));
    c.socket.write(GET);
    c.socket.write('POST / HTTP/1.1\r\nHost: orders.shop\r\nContent-Length: 1\r\n\r\nx');
    await c.ended;
    await waitFor('the lane to read them', () => (accepted[0]?.bytesRead ?? 0) > GET.length * 2);
    expect(c.received().toString('latin1')).toContain('Connection: close\r\n');
    expect([held.length, l.served.length, l.handedOver.length]).toEqual([1, 1, 0]);
  });

  it('ok/an app that half-closes with an answer due: the answer is abandoned and the connection ended, as node:http does', async () => {
    const l = await lane();
    const held = holdAnswers(l);
    const c = await client(l.port);
    c.socket.end(GET);
    await waitFor('the request', () => held.length === 1);
    await c.ended;
    const res = held[0] as LeanResponse;
    expect(res.destroyed).toBe(true); // the exchange heard 'close'
    expect(c.received().length).toBe(0);
  });
});

/** Whether `text` holds a whole answer (the lane and node:http write a chunked end in a later write). */
type Done = (text: string) => boolean;

/** What node:http's ServerResponse writes for `respond`, on a keep-alive HTTP/1.1 request of `method`. */
async function nodeHttpBytes(method: string, respond: (res: ServerResponse) => void, done: Done): Promise<string> {
  const server = createHttpServer({ keepAliveTimeout: OUTBOUND_LIMITS.keepAliveTimeoutMs }, (_req, res) =>
    respond(res),
  );
  servers.push(server);
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const c = await client((server.address() as { port: number }).port);
  c.socket.write(`${method} / HTTP/1.1\r\nHost: x\r\n\r\n`);
  await waitFor('node:http to answer', () => done(c.received().toString('latin1')));
  return c.received().toString('latin1');
}

/** What LeanResponse writes for the same calls. */
async function leanBytes(method: 'GET' | 'HEAD', respond: (res: LeanResponse) => void, done: Done): Promise<string> {
  const l = await lane();
  l.answer = respond;
  const c = await client(l.port);
  c.socket.write(`${method} / HTTP/1.1\r\nHost: x\r\n\r\n`);
  await waitFor('the lane to answer', () => l.served.length === 1 && done(c.received().toString('latin1')));
  return c.received().toString('latin1');
}

describe('LeanResponse writes what node:http writes', () => {
  const answers: Array<[string, 'GET' | 'HEAD', number, string[], string | undefined]> = [
    ['a body with a length', 'GET', 200, ['content-type', 'text/plain', 'content-length', '5', 'date', DATE], 'hello'],
    ['a body without a length (chunked)', 'GET', 200, ['content-type', 'text/plain', 'date', DATE], 'hello'],
    ['HEAD with a length', 'HEAD', 200, ['content-length', '5', 'date', DATE], undefined],
    ['204', 'GET', 204, ['date', DATE], undefined],
    ['304 with a length', 'GET', 304, ['content-length', '5', 'date', DATE], undefined],
    ['Connection: close', 'GET', 503, ['content-length', '2', 'date', DATE, 'connection', 'close'], 'no'],
    ['an unregistered status', 'GET', 599, ['content-length', '0', 'date', DATE], undefined],
  ];
  it.each(answers)('ok/%s', async (_name, method, status, headers, body) => {
    const chunked = body !== undefined && !headers.includes('content-length');
    const done: Done = (text) =>
      chunked ? text.endsWith('0\r\n\r\n') : text.includes('\r\n\r\n') && text.endsWith(body ?? '\r\n\r\n');
    const expected = await nodeHttpBytes(
      method,
      (res) => {
        res.writeHead(status, headers);
        res.end(body);
      },
      done,
    );
    const actual = await leanBytes(
      method,
      (res) => {
        res.writeHead(status, headers);
        res.end(body);
      },
      done,
    );
    expect(actual).toBe(expected);
  });

  it.each([
    ['with a length', ['content-length', '2']],
    ['chunked', []],
  ])(
    'fail/obs-text bytes (0x80–0xFF) of a header value %s are written as those bytes, not UTF-8-encoded',
    async (_name, framing) => {
      // llhttp hands a header's bytes over as a latin1 string; node:http writes a head as latin1 before a Buffer body.
      const respond = (res: ServerResponse | LeanResponse) => {
        (res as LeanResponse).writeHead(200, ['x-obs', 'caf\u00e9\u00ff', ...framing, 'date', DATE]);
        res.end(Buffer.from('ok'));
      };
      const done: Done = (text) => text.endsWith(framing.length > 0 ? '\r\n\r\nok' : '0\r\n\r\n');
      const expected = await nodeHttpBytes('GET', respond, done);
      expect(expected).toContain('\r\nx-obs: caf\u00e9\u00ff\r\n');
      expect(await leanBytes('GET', respond, done)).toBe(expected);
    },
  );

  it('ok/a response without a Date header gets one, as from node:http', async () => {
    const actual = await leanBytes(
      'GET',
      (res) => {
        res.writeHead(200, ['content-length', '0']);
        res.end();
      },
      (text) => text.includes('\r\n\r\n'),
    );
    expect(actual).toMatch(
      /^HTTP\/1\.1 200 OK\r\ncontent-length: 0\r\nDate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT\r\n/,
    );
  });

  it('fail/a header value node:http refuses is refused alike (the exchange answers 502)', () => {
    const res = new LeanResponse({} as Socket, false, '', () => undefined); // writeHead writes nothing yet
    expect(() => res.writeHead(200, ['x-bad', 'a\u0001b'])).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_CHAR' }),
    );
    expect(() => res.writeHead(200, ['bad name', 'x'])).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_HTTP_TOKEN' }),
    );
    expect(() => res.writeHead(1000, [])).toThrow(RangeError);
    expect(res.headersSent).toBe(false);
  });

  it('ok/fields set before the head: a name set twice, or given to writeHead, is written once, as by node:http', async () => {
    const respond = (res: ServerResponse | LeanResponse) => {
      res.setHeader('retry-after', '1');
      res.setHeader('Retry-After', '2');
      res.setHeader('x-a', 'set');
      (res as LeanResponse).writeHead(503, ['x-a', 'given', 'content-length', '2', 'date', DATE]);
      res.end('no');
    };
    const done: Done = (text) => text.endsWith('\r\n\r\nno');
    const expected = await nodeHttpBytes('GET', respond, done);
    expect(expected).toContain('Retry-After: 2\r\n');
    expect(await leanBytes('GET', respond, done)).toBe(expected);
  });

  it('fail/an answer destroyed before its end emits close once, as a ServerResponse does (its exchange lets go)', async () => {
    let closes = 0;
    const l = await lane();
    l.answer = (res) => {
      res.on('close', () => {
        closes++;
      });
      res.writeHead(200, ['content-length', '10', 'date', DATE]);
      res.write(Buffer.from('12345'));
      res.destroy();
      res.destroy();
    };
    const c = await client(l.port);
    c.socket.write(GET);
    await c.ended;
    await waitFor('the close event', () => closes > 0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(closes).toBe(1);
  });

  it('ok/an error answer (writeErrorH1) is the error JSON with its length', async () => {
    const error = new MeshauthError('MESHAUTH_ERR_PEER_UNAVAILABLE', 'peer sidecar unavailable', { reason: 'connect' });
    const actual = await leanBytes(
      'GET',
      (res) => writeErrorH1(res, error),
      (text) => text.endsWith('}'),
    );
    expect(actual).toMatch(
      /^HTTP\/1\.1 503 Service Unavailable\r\ncontent-type: application\/json\r\ncontent-length: \d+\r\n/,
    );
    expect(actual).toContain('"MESHAUTH_ERR_PEER_UNAVAILABLE"');
  });
});

describe('the lean lane in a sidecar', () => {
  it('ok/a SIGTERM drain closes an idle keep-alive connection of the app at once, not at the deadline', async () => {
    const ca = await TestCa.create();
    const app = await startApp();
    const idB = ca.idFor('/ns/shop/sa/b');
    const b = await startTestSidecar(ca, idB, testConfig({ appPort: app.port }));
    const routes = { 'b.mesh': { address: `127.0.0.1:${b.sidecar.inboundPort}`, ids: [idB] } };
    const a = await startTestSidecar(ca, ca.idFor('/ns/shop/sa/a'), testConfig({ appPort: 1, routes }));
    try {
      const c = await client(a.sidecar.outboundPort);
      c.socket.write('GET http://b.mesh/drain HTTP/1.1\r\nHost: b.mesh\r\n\r\n');
      await waitFor('the answer', () => /^HTTP\/1\.1 200 OK\r\n/.test(c.received().toString('latin1')));
      expect(c.received().toString('latin1')).toContain('\r\nKeep-Alive: timeout=65\r\n');
      const closing = a.sidecar.close(60_000); // the drain's length, as SIGTERM's drainTimeout
      // Before, only node:http's idle connections were closed; one in the lane would have held the drain 60 s.
      await waitFor('the idle connection closed', () => c.socket.readableEnded || c.socket.destroyed, 10_000);
      await closing;
    } finally {
      await a.sidecar.close(0);
      await b.sidecar.close(0);
      await app.close();
    }
  });

  it.each([
    [
      'throws',
      () => {
        throw new Error('hook failed');
      },
    ],
    [
      'rejects',
      async () => {
        throw new Error('hook failed');
      },
    ],
  ] as const)(
    'fail/an outbound hook that %s refuses a lane request: 401 PASSPORT_INVALID, counted, never sent',
    async (_how, onOutboundRequest) => {
      // The lane's requests take the same hook (the passport's) as node:http's, and a failed one is the exchange's
      // own refusal before a response head, answered and counted as node:http's path answers it.
      const ca = await TestCa.create();
      const app = await startApp();
      const idB = ca.idFor('/ns/shop/sa/b');
      const b = await startTestSidecar(ca, idB, testConfig({ appPort: app.port }));
      const routes = { 'b.mesh': { address: `127.0.0.1:${b.sidecar.inboundPort}`, ids: [idB] } };
      const a = await startTestSidecar(ca, ca.idFor('/ns/shop/sa/a'), testConfig({ appPort: 1, routes }), {
        hooks: { onOutboundRequest },
      });
      try {
        const c = await client(a.sidecar.outboundPort);
        c.socket.write('GET http://b.mesh/hooked HTTP/1.1\r\nHost: b.mesh\r\n\r\n');
        await waitFor('the answer', () => c.received().toString('latin1').endsWith('}'));
        const text = c.received().toString('latin1');
        expect(text).toMatch(/^HTTP\/1\.1 401 Unauthorized\r\n/);
        expect(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)).code).toBe('MESHAUTH_ERR_PASSPORT_INVALID');
        const rejected = (await a.metrics.requestsRejected.get()).values.find(
          (v) => v.labels.direction === 'outbound' && v.labels.code === 'MESHAUTH_ERR_PASSPORT_INVALID',
        );
        expect(rejected?.value).toBe(1);
        expect(app.seen).toEqual([]);
      } finally {
        await a.sidecar.close(0);
        await b.sidecar.close(0);
        await app.close();
      }
    },
  );
});
