// The inbound's HTTP/1.1 client to the app (src/sidecar/inbound/app-client.ts) against a raw TCP app that writes
// exact bytes: keep-alive reuse and when a connection must not be reused, Node's llhttp reading the responses
// (informational responses, HEAD, long header lists, bodies delimited by the connection), the bound on
// connections, and the byte-level guarantees (a response nobody asked for, a short body, a cut upload).
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { isMeshauthError } from '../../src/errors/index.js';
import { AppClient, type AppRequest, type AppResponseHandler } from '../../src/sidecar/inbound/app-client.js';
import { eventually, type RawApp, type RawAppConnection, startRawApp } from '../helpers/raw-app.js';

interface Outcome {
  status: number;
  headers: readonly string[];
  body: string;
  /** The error reported instead of (or after) the head. */
  error: Error | undefined;
}

/** Dispatches `request` and resolves with what the handler saw once it completed or failed. */
function send(client: AppClient, request: Partial<AppRequest> = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const outcome: Outcome = { status: 0, headers: [], body: '', error: undefined };
    const handler: AppResponseHandler = {
      onConnect: () => undefined,
      onHeaders: (status, headers) => {
        outcome.status = status;
        outcome.headers = headers;
        return true;
      },
      onData: (chunk) => {
        outcome.body += chunk.toString('latin1');
        return true;
      },
      onComplete: () => resolve(outcome),
      onError: (error) => {
        outcome.error = error;
        resolve(outcome);
      },
    };
    client.dispatch({ method: 'GET', path: '/', headers: ['host', 'app'], body: null, ...request }, handler);
  });
}

/** Requests (heads) seen on a raw connection so far. */
function requestCount(connection: RawAppConnection): number {
  return connection.received.split('\r\n\r\n').length - 1;
}

const apps: RawApp[] = [];
const clients: AppClient[] = [];

async function setup(
  answer: (connection: RawAppConnection, requests: number) => void,
  connections = 4,
): Promise<{ app: RawApp; client: AppClient }> {
  const answered = new Map<RawAppConnection, number>();
  const app = await startRawApp((connection) => {
    const requests = requestCount(connection);
    if (requests <= (answered.get(connection) ?? 0)) return;
    answered.set(connection, requests);
    answer(connection, requests);
  });
  apps.push(app);
  const client = new AppClient({
    host: '127.0.0.1',
    port: app.port,
    authority: `127.0.0.1:${app.port}`,
    connections,
    connectTimeoutMs: 2_000,
    responseTimeoutMs: 2_000,
    keepAliveTimeoutMs: 10_000,
    maxHeaderBytes: 16 * 1024,
  });
  clients.push(client);
  return { app, client };
}

const OK = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok';

afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy();
  for (const app of apps.splice(0)) await app.close();
});

describe('AppClient: keep-alive', () => {
  it('ok/sequential requests reuse one connection', async () => {
    const { app, client } = await setup((c) => c.socket.write(OK));
    for (let i = 0; i < 3; i++) expect((await send(client)).body).toBe('ok');
    expect(app.connections.length).toBe(1);
    expect(requestCount(app.connections[0] as RawAppConnection)).toBe(3);
  });

  it.each([
    ['connection: close', 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok'],
    [
      'a keep-alive hint too short to reuse safely',
      'HTTP/1.1 200 OK\r\ncontent-length: 2\r\nkeep-alive: timeout=1\r\n\r\nok',
    ],
    ['HTTP/1.0 without keep-alive', 'HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok'],
  ])('ok/%s → the next request gets a new connection', async (_name, response) => {
    const { app, client } = await setup((c) => c.socket.write(response));
    expect((await send(client)).body).toBe('ok');
    expect((await send(client)).body).toBe('ok');
    expect(app.connections.length).toBe(2);
  });

  it('ok/requests beyond the bound wait for a connection, then all complete', async () => {
    const { app, client } = await setup((c) => setTimeout(() => c.socket.write(OK), 20), 2);
    const outcomes = await Promise.all(Array.from({ length: 8 }, () => send(client)));
    expect(outcomes.map((o) => o.status)).toEqual(Array(8).fill(200));
    expect(app.connections.length).toBe(2);
  });

  it('ok/a request without Host gets the app address as Host', async () => {
    const { app, client } = await setup((c) => c.socket.write(OK));
    await send(client, { headers: ['x-a', '1'] });
    expect(app.connections[0]?.received).toContain(`\r\nhost: 127.0.0.1:${app.port}\r\n`);
  });
});

describe('AppClient: responses through llhttp', () => {
  it('ok/an informational response is skipped, the final one delivered', async () => {
    const { client } = await setup((c) => c.socket.write(`HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n${OK}`));
    const outcome = await send(client);
    expect([outcome.status, outcome.body]).toEqual([200, 'ok']);
  });

  it('ok/HEAD: the response has no body whatever its content-length says', async () => {
    const { app, client } = await setup((c) => c.socket.write('HTTP/1.1 200 OK\r\ncontent-length: 500\r\n\r\n'));
    const outcome = await send(client, { method: 'HEAD' });
    expect([outcome.status, outcome.body, outcome.error]).toEqual([200, '', undefined]);
    expect((await send(client, { method: 'HEAD' })).status).toBe(200);
    expect(app.connections.length).toBe(1);
  });

  it('ok/a head with 100 fields arrives whole (llhttp hands long lists over in parts)', async () => {
    const fields = Array.from({ length: 100 }, (_, i) => `x-f${i}: v${i}\r\n`).join('');
    const { client } = await setup((c) => c.socket.write(`HTTP/1.1 200 OK\r\n${fields}content-length: 2\r\n\r\nok`));
    const outcome = await send(client);
    expect(outcome.headers.length).toBe(202);
    expect(outcome.headers.slice(198)).toEqual(['x-f99', 'v99', 'content-length', '2']);
  });

  it('ok/trailer fields of a chunked response are dropped, never prefixed to the next head', async () => {
    const fields = Array.from({ length: 100 }, (_, i) => `x-f${i}: v${i}\r\n`).join('');
    const { client } = await setup((c, n) =>
      c.socket.write(
        n === 1
          ? 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nx-trailer: t\r\n\r\n'
          : `HTTP/1.1 200 OK\r\n${fields}content-length: 2\r\n\r\nok`,
      ),
    );
    expect((await send(client)).body).toBe('ok');
    const second = await send(client);
    expect(second.headers.length).toBe(202);
    expect(second.headers.slice(0, 2)).toEqual(['x-f0', 'v0']);
  });

  it('ok/a body delimited by the end of the connection', async () => {
    const { client } = await setup((c) => c.socket.end('HTTP/1.1 200 OK\r\n\r\nuntil-eof'));
    const outcome = await send(client);
    expect([outcome.body, outcome.error]).toEqual(['until-eof', undefined]);
  });

  it('fail/a body shorter than its content-length → an error after the head, never a completion', async () => {
    const { client } = await setup((c) => c.socket.end('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc'));
    const outcome = await send(client);
    expect(outcome.status).toBe(200);
    expect(outcome.body).toBe('abc');
    expect((outcome.error as Error & { code?: string }).code).toBe('HPE_INVALID_EOF_STATE');
  });

  it('fail/garbage → a parse error (HPE_*)', async () => {
    const { client } = await setup((c) => c.socket.end('HELLO WORLD\r\n\r\n'));
    const outcome = await send(client);
    expect([outcome.status, (outcome.error as Error & { code?: string }).code]).toEqual([0, 'HPE_INVALID_CONSTANT']);
  });

  it('fail/a second response nobody asked for → the connection is closed, never handed to the next request', async () => {
    const { app, client } = await setup((c, n) =>
      c.socket.write(n === 1 ? `${OK}HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nevil` : OK),
    );
    expect((await send(client)).body).toBe('ok');
    expect(await eventually(() => app.connections[0]?.closed === true)).toBe(true);
    expect((await send(client)).body).toBe('ok');
    expect(app.connections.length).toBe(2);
  });

  it('fail/no head within the headers timeout → MESHAUTH_ERR_UPSTREAM_TIMEOUT', async () => {
    const { client } = await setup(() => undefined);
    const fast = new AppClient({ ...client.options, responseTimeoutMs: 100 });
    clients.push(fast);
    const outcome = await send(fast);
    expect(isMeshauthError(outcome.error) && outcome.error.code).toBe('MESHAUTH_ERR_UPSTREAM_TIMEOUT');
  });
});

describe('AppClient: request bodies', () => {
  it('ok/a body without content-length goes chunked and ends with the terminating chunk', async () => {
    const { app, client } = await setup((c) => {
      if (c.received.endsWith('0\r\n\r\n')) c.socket.write(OK);
    });
    const body = new PassThrough();
    const done = send(client, { method: 'POST', body });
    body.write('hello');
    body.end('!');
    expect((await done).body).toBe('ok');
    expect(app.connections[0]?.received).toContain(
      'transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n1\r\n!\r\n0\r\n\r\n',
    );
  });

  it('fail/an upload cut by the caller → the app connection closes right after the data, no terminating chunk', async () => {
    const { app, client } = await setup(() => undefined);
    const body = new PassThrough();
    const done = send(client, { method: 'POST', body });
    body.write('partial');
    expect(await eventually(() => (app.connections[0]?.received ?? '').includes('partial'))).toBe(true);
    body.destroy(new Error('caller went away'));
    const outcome = await done;
    expect(outcome.error).toBeDefined();
    expect(await eventually(() => app.connections[0]?.closed === true)).toBe(true);
    expect(app.connections[0]?.received.endsWith('partial')).toBe(true);
  });
});

describe('AppClient: idle connections', () => {
  it('ok/a connection idle past the keep-alive hint is not reused (the app may be closing it)', async () => {
    const { app, client } = await setup((c) =>
      c.socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nkeep-alive: timeout=3\r\n\r\nok'),
    );
    expect((await send(client)).body).toBe('ok');
    expect((await send(client)).body).toBe('ok'); // at once: reused
    expect(app.connections.length).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // timeout=3 less the 2 s margin
    expect((await send(client)).body).toBe('ok');
    expect(app.connections.length).toBe(2);
  });
});

describe('AppClient: a connection closing while idle', () => {
  it('ok/an idle connection the app just closed is never handed to the next request', async () => {
    // The app answers, then closes the connection shortly after; requests sent at that moment must get a new one.
    const { client } = await setup((c) => {
      c.socket.write(OK);
      setTimeout(() => c.socket.end(), 5);
    });
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) {
      statuses.push((await send(client)).status);
      await new Promise((resolve) => setTimeout(resolve, i % 3 === 0 ? 6 : 0));
    }
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
  });
});
