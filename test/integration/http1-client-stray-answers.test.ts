// HTTP/1.1 answers carry no request id: an app that sends an answer nobody asked for makes the client take it as the
// next request's answer on that connection, and every later answer there is one request late (found by a probe of
// hostile apps behind the inbound: 720 of 1,200 answers went to other callers, 29 across SPIFFE IDs, all clean 200s).
// The client cannot see a stray that arrives after the next request was written; it closes the doors it can see:
// - an answer that announces a body it cannot have (HEAD, 204, 304, an interim answer, with a Content-Length or a
//   Transfer-Encoding) closes its connection instead of keeping it: an app that sends that body anyway sends it
//   after the answer, where it was the next caller's;
// - a stray it does see (bytes with nothing outstanding, a second answer, bytes waiting before a request) is told to
//   the owner, which counts and logs it, and no connection is reused for a while, so the same app cannot shift
//   answers again meanwhile.
// The app is a raw TCP server answering byte for byte; the inbound's wiring is checked through a real sidecar pair.
import { afterEach, describe, expect, it } from 'vitest';
import { Http1Client, type Http1Request } from '../../src/sidecar/http1-client.js';
import { http1Exchange } from '../helpers/http1-exchange.js';
import { logLines } from '../helpers/log-lines.js';
import { type RawApp, type RawAppConnection, startRawApp } from '../helpers/raw-app.js';
import { startTestSidecar, testConfig, viaProxy } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

function answer(body: string, extra = ''): string {
  return `HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n${extra}\r\n${body}`;
}

/** Calls `answer` once for each request head (any method) a connection of the raw app receives, in order. */
function eachHead(
  answer: (connection: RawAppConnection, path: string) => void,
): (connection: RawAppConnection) => void {
  const seen = new WeakMap<RawAppConnection, number>();
  return (connection) => {
    const heads = [...connection.received.matchAll(/[A-Z]+ (\S+) HTTP\/1\.1\r\n[\s\S]*?\r\n\r\n/g)];
    for (const head of heads.slice(seen.get(connection) ?? 0)) answer(connection, head[1] ?? '');
    seen.set(connection, heads.length);
  };
}

/** The app's late writes, cleared after each test. */
const timers = new Set<NodeJS.Timeout>();
afterEach(() => {
  for (const timer of timers) clearTimeout(timer);
  timers.clear();
});

/** Writes `text` to the connection `ms` later (the app's late bytes). */
function later(socket: { write(text: string): unknown; destroyed: boolean }, ms: number, text: string): void {
  const timer = setTimeout(() => {
    timers.delete(timer);
    if (!socket.destroyed) socket.write(text);
  }, ms);
  timers.add(timer);
}

/** A client of the raw app with `maxConnections` places (and the stray-answer hook, when given). */
function testClient(port: number, maxConnections: number, onStrayAnswer?: () => void): Http1Client {
  return new Http1Client({
    host: '127.0.0.1',
    port,
    maxConnections,
    timeoutMs: 5_000,
    connectTimeoutMs: 5_000,
    keepAliveMs: 60_000,
    onStrayAnswer,
  });
}

const get = (path: string): Http1Request => ({ method: 'GET', path, headers: ['host', 'app'], body: null });

describe('HTTP/1.1 client: answers no request asked for', () => {
  let app: RawApp | undefined;
  let client: Http1Client | undefined;
  afterEach(async () => {
    await client?.close(Date.now());
    await app?.close();
    client = undefined;
    app = undefined;
  });

  it.each([
    ['a HEAD answer', 'HEAD', 'HTTP/1.1 200 OK\r\ncontent-length: 39\r\n\r\n'],
    ['a 204 with a length', 'GET', 'HTTP/1.1 204 No Content\r\ncontent-length: 39\r\n\r\n'],
    ['a 304 with chunked', 'GET', 'HTTP/1.1 304 Not Modified\r\ntransfer-encoding: chunked\r\n\r\n'],
    ['an interim answer with a length', 'GET', `HTTP/1.1 100 Continue\r\ncontent-length: 39\r\n\r\n${answer('first')}`],
  ])(
    'fail/%s announcing a body, the body sent later → the next request on a new connection, its own answer',
    async (_name, method, head) => {
      app = await startRawApp(
        eachHead((connection, path) => {
          if (path === '/first') {
            connection.socket.write(head);
            // The body it announced, written after the answer (a complete answer itself), before the next answer.
            later(connection.socket, 20, answer('LATE'));
          } else {
            later(connection.socket, 60, answer(path));
          }
        }),
      );
      client = testClient((app as RawApp).port, 1);
      const first = await http1Exchange(client, { method, path: '/first', headers: ['host', 'app'], body: null });
      expect(first.status).toBeGreaterThan(0);
      expect(await http1Exchange(client, get('/second'))).toEqual({ status: 200, body: '/second' });
      expect(app.connections).toHaveLength(2);
    },
  );

  it('fail/a second answer on an idle connection → counted once, and no connection reused for a while', async () => {
    app = await startRawApp(
      eachHead((connection, path) => {
        connection.socket.write(answer(path));
        if (path === '/twice') later(connection.socket, 20, answer('STRAY'));
      }),
    );
    let strays = 0;
    client = testClient((app as RawApp).port, 4, () => {
      strays += 1;
    });
    expect(await http1Exchange(client, get('/twice'))).toEqual({ status: 200, body: '/twice' });
    await waitFor('the stray seen', () => strays === 1);
    // Each request now has a connection of its own: three requests, three more connections, each its own answer.
    for (const path of ['/a', '/b', '/c'])
      expect(await http1Exchange(client, get(path))).toEqual({ status: 200, body: path });
    expect(app.connections).toHaveLength(4);
    expect(strays).toBe(1);
  });
});

describe('HTTP/1.1 client: a server closing an idle connection', () => {
  let app: RawApp | undefined;
  let client: Http1Client | undefined;
  afterEach(async () => {
    await client?.close(Date.now());
    await app?.close();
  });

  it.each([
    ['a 408 before its close', 'HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n'],
    ['a stray line end', '\r\n'],
  ])(
    'ok/%s on an idle connection → not an answer out of turn: not counted, connections reused after',
    async (_name, notice) => {
      app = await startRawApp(
        eachHead((connection, path) => {
          connection.socket.write(answer(path));
          if (path === '/first') later(connection.socket, 20, notice);
        }),
      );
      let strays = 0;
      client = testClient((app as RawApp).port, 1, () => {
        strays += 1;
      });
      expect(await http1Exchange(client, get('/first'))).toEqual({ status: 200, body: '/first' });
      await waitFor('the notice read and its connection closed', () => app?.connections[0]?.closed === true);
      for (const path of ['/a', '/b'])
        expect(await http1Exchange(client, get(path))).toEqual({ status: 200, body: path });
      expect(strays).toBe(0);
      expect(app.connections).toHaveLength(2); // the second kept for /b: reuse goes on
    },
  );
});

describe('HTTP/1.1 client: kept connections per caller (Http1Request.key)', () => {
  let app: RawApp | undefined;
  let client: Http1Client | undefined;
  afterEach(async () => {
    await client?.close(Date.now());
    await app?.close();
    client = undefined;
    app = undefined;
  });

  const keyed = (path: string, key: string): Http1Request => ({ ...get(path), key });

  it('ok/two callers take turns → each keeps a connection of its own', async () => {
    app = await startRawApp(eachHead((connection, path) => connection.socket.write(answer(path))));
    client = testClient((app as RawApp).port, 4);
    for (const path of ['/a1', '/b1', '/a2', '/b2', '/a3']) {
      expect(await http1Exchange(client, keyed(path, path.slice(1, 2)))).toEqual({ status: 200, body: path });
    }
    expect(app.connections).toHaveLength(2);
    const paths = app.connections.map((c) => [...c.received.matchAll(/GET \/(\w)/g)].map((m) => m[1]).join(''));
    expect(paths.sort()).toEqual(['aaa', 'bb']);
  });

  it("fail/an app answering out of turn on one caller's connection → another caller never gets that answer", async () => {
    app = await startRawApp(
      eachHead((connection, path) => {
        if (path === '/two') {
          connection.socket.write(answer(path));
          later(connection.socket, 5, answer('STRAY'));
        } else {
          later(connection.socket, 40, answer(path));
        }
      }),
    );
    client = testClient((app as RawApp).port, 2);
    expect(await http1Exchange(client, keyed('/two', 'a'))).toEqual({ status: 200, body: '/two' });
    // Sent at once, before the stray: on one shared connection, b's request was the one the stray answered.
    expect(await http1Exchange(client, keyed('/b', 'b'))).toEqual({ status: 200, body: '/b' });
  });

  it('ok/a full pool comes back at once while another caller waits → one place freed for it, the rest kept', async () => {
    const held: RawAppConnection[] = [];
    app = await startRawApp(
      eachHead((connection, path) => {
        if (path === '/hold') held.push(connection);
        else connection.socket.write(answer(path));
      }),
    );
    client = testClient((app as RawApp).port, 4);
    const c = client;
    const holding = [1, 2, 3, 4].map(() => http1Exchange(c, keyed('/hold', 'a')));
    await waitFor('four held requests', () => held.length === 4);
    const waiting = [
      http1Exchange(c, keyed('/b', 'b')),
      ...[1, 2, 3, 4].map((i) => http1Exchange(c, keyed(`/a${i}`, 'a'))),
    ];
    for (const connection of held) connection.socket.write(answer('/hold'));
    await Promise.all([...holding, ...waiting]);
    // One of a's four made way for b; the other three served a's waiting requests.
    expect(app.connections).toHaveLength(5);
  });

  it('ok/one place, two callers taking turns → a connection each turn, in order', async () => {
    app = await startRawApp(eachHead((connection, path) => connection.socket.write(answer(path))));
    client = testClient((app as RawApp).port, 1);
    const answers = await Promise.all(
      ['/a1', '/b1', '/a2', '/b2'].map((p) => http1Exchange(client as Http1Client, keyed(p, p.slice(1, 2)))),
    );
    expect(answers.map((a) => a.body)).toEqual(['/a1', '/b1', '/a2', '/b2']);
    expect(app.connections.length).toBeGreaterThanOrEqual(2);
  });
});

describe('inbound: the app sends an answer no request asked for', () => {
  const closers: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  it('fail/a second answer → meshauth_streams_reset_total{reason="app_stray_answer"}, one warn line', async () => {
    const app = await startRawApp(
      eachHead((connection, path) => {
        connection.socket.write(answer(path));
        if (path === '/twice') setTimeout(() => connection.socket.write(answer('STRAY')), 20).unref();
      }),
    );
    closers.push(() => app.close());
    const ca = await TestCa.create();
    const logs = logLines('inbound', 'info');
    const b = await startTestSidecar(ca, ca.idFor('/ns/b/sa/b'), testConfig({ appPort: app.port }), {
      logger: logs.logger,
    });
    closers.push(() => b.sidecar.close(0));
    const a = await startTestSidecar(
      ca,
      ca.idFor('/ns/a/sa/a'),
      testConfig({
        appPort: 1,
        routes: { 'b.mesh': { address: `127.0.0.1:${b.sidecar.inboundPort}`, ids: [ca.idFor('/ns/b/sa/b')] } },
      }),
    );
    closers.push(() => a.sidecar.close(0));
    const res = await viaProxy(a.sidecar.outboundPort, 'http://b.mesh/twice');
    expect(res.body).toBe('/twice');
    await waitFor('the stray counted', async () =>
      (await b.metrics.registry.getSingleMetricAsString('meshauth_streams_reset_total')).includes(
        'direction="inbound",reason="app_stray_answer"} 1',
      ),
    );
    const lines = logs.find({ reason: 'app_stray_answer' });
    expect(lines).toHaveLength(1);
    expect(lines[0]?.msg).toMatch(/^the app sent an answer no request asked for/);
  });
});
