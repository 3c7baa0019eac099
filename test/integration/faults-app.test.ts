// Fault injection at the app edge, with traffic flowing through a real sidecar pair (app ← B ← A): the app resets
// mid-response, stalls before and after its headers, answers garbage, refuses connections, and closes keep-alive
// connections early. Each case asserts what the client sees, B's metric and log line (strict JSON), that nothing
// crashed, and that the next request succeeds without restarting anything.
import { createServer, type Server } from 'node:http';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type FaultPair,
  metricValue,
  onRequestHead,
  type RawApp,
  startFaultPair,
  startRawApp,
} from '../helpers/fault-harness.js';
import { TestCa } from '../helpers/test-ca.js';

let ca: TestCa;
let app: RawApp;
let pair: FaultPair;
const client = new Agent({ connections: 4 });

/** The raw app: the request path picks the fault. */
function misbehave(socket: import('node:net').Socket): void {
  onRequestHead(socket, (head) => {
    const path = head.split(' ')[1] ?? '';
    switch (path) {
      case '/reset-mid-body':
        socket.write(`HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n${'x'.repeat(5000)}`);
        setTimeout(() => socket.resetAndDestroy(), 50);
        return;
      case '/reset-before-response':
        socket.resetAndDestroy();
        return;
      case '/garbage':
        socket.end('HELLO WORLD\r\n\r\n');
        return;
      case '/duplicate-content-type':
        // Valid HTTP/1.1 (node:http passes it on), but a field HTTP/2 allows once: B cannot send it to A.
        socket.end('HTTP/1.1 200 OK\r\ncontent-type: a/b\r\ncontent-type: c/d\r\ncontent-length: 2\r\n\r\nok');
        return;
      case '/stall':
        return; // never answers
      case '/stall-mid-body':
        socket.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc');
        return;
      default:
        // One request per connection: this raw app reads only the first request head of each.
        socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok');
    }
  });
}

async function call(path: string, host = 'b.mesh') {
  const response = await request(`http://127.0.0.1:${pair.a.sidecar.outboundPort}${path}`, {
    headers: { host },
    dispatcher: client,
    headersTimeout: 15_000,
    bodyTimeout: 15_000,
  });
  let body: string;
  let bodyError: string | undefined;
  try {
    body = await response.body.text();
  } catch (error) {
    body = '';
    bodyError = (error as Error).message;
  }
  return { status: response.statusCode, body, bodyError };
}

function warnings(log: FaultPair['logB'], pattern: RegExp) {
  return log.records().filter((r) => r.level === 'warn' && pattern.test(String(r.msg)));
}

beforeAll(async () => {
  ca = await TestCa.create();
  app = await startRawApp(misbehave);
  pair = await startFaultPair(ca, app.port, { appTimeout: '1s' });
});
afterAll(async () => {
  await pair?.close();
  await app?.close();
  await client.close();
});

describe('app faults behind the inbound sidecar', () => {
  it('fail/app resets mid-response: the client gets a truncated body, B counts and logs it, the next request works', async () => {
    const before = await metricValue(pair.b, 'meshauth_streams_reset_total', 'reason="app_response_truncated"');
    const res = await call('/reset-mid-body');
    // Headers were already on their way: the only honest signal left is an aborted body, never a short "complete" one.
    expect(res.status).toBe(200);
    expect(res.bodyError).toBeDefined();
    expect(res.body.length).toBeLessThan(100_000);
    expect(await metricValue(pair.b, 'meshauth_streams_reset_total', 'reason="app_response_truncated"')).toBe(
      before + 1,
    );
    expect(warnings(pair.logB, /truncated/).at(-1)).toMatchObject({
      component: 'inbound',
      reason: 'app_response_truncated',
    });
    expect((await call('/ok')).status).toBe(200);
  });

  it('fail/app resets before answering → 503 MESHAUTH_ERR_UPSTREAM_UNAVAILABLE', async () => {
    const res = await call('/reset-before-response');
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body)).toEqual({
      code: 'MESHAUTH_ERR_UPSTREAM_UNAVAILABLE',
      message: 'upstream unavailable',
    });
    expect(
      await metricValue(pair.b, 'meshauth_requests_rejected_total', 'code="MESHAUTH_ERR_UPSTREAM_UNAVAILABLE"'),
    ).toBeGreaterThanOrEqual(1);
    expect(warnings(pair.logB, /app unavailable/).at(-1)).toMatchObject({ code: 'MESHAUTH_ERR_UPSTREAM_UNAVAILABLE' });
    expect((await call('/ok')).status).toBe(200);
  });

  it('fail/app answers garbage → 502 MESHAUTH_ERR_UPSTREAM_PROTOCOL', async () => {
    const res = await call('/garbage');
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body).code).toBe('MESHAUTH_ERR_UPSTREAM_PROTOCOL');
    expect(await metricValue(pair.b, 'meshauth_requests_rejected_total', 'code="MESHAUTH_ERR_UPSTREAM_PROTOCOL"')).toBe(
      1,
    );
    expect(warnings(pair.logB, /invalid response/).at(-1)).toMatchObject({ code: 'MESHAUTH_ERR_UPSTREAM_PROTOCOL' });
    expect((await call('/ok')).status).toBe(200);
  });

  it('fail/app answers a head HTTP/2 cannot carry (Content-Type twice) → 502 MESHAUTH_ERR_UPSTREAM_PROTOCOL, not 503', async () => {
    const before = await metricValue(
      pair.b,
      'meshauth_requests_rejected_total',
      'code="MESHAUTH_ERR_UPSTREAM_PROTOCOL"',
    );
    const res = await call('/duplicate-content-type');
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body).code).toBe('MESHAUTH_ERR_UPSTREAM_PROTOCOL');
    expect(await metricValue(pair.b, 'meshauth_requests_rejected_total', 'code="MESHAUTH_ERR_UPSTREAM_PROTOCOL"')).toBe(
      before + 1,
    );
    expect(warnings(pair.logB, /invalid response/).at(-1)).toMatchObject({ code: 'MESHAUTH_ERR_UPSTREAM_PROTOCOL' });
    expect((await call('/ok')).status).toBe(200);
  });

  it('fail/app stalls before its headers → 504 MESHAUTH_ERR_UPSTREAM_TIMEOUT after inbound.appTimeout', async () => {
    const res = await call('/stall');
    expect(res.status).toBe(504);
    expect(JSON.parse(res.body).code).toBe('MESHAUTH_ERR_UPSTREAM_TIMEOUT');
    expect(await metricValue(pair.b, 'meshauth_requests_rejected_total', 'code="MESHAUTH_ERR_UPSTREAM_TIMEOUT"')).toBe(
      1,
    );
    expect(warnings(pair.logB, /did not answer in time/).length).toBeGreaterThanOrEqual(1);
    expect((await call('/ok')).status).toBe(200);
  });

  it('fail/app stalls mid-body: the response is cut (bounded), not held open forever', async () => {
    const before = await metricValue(pair.b, 'meshauth_streams_reset_total', 'reason="app_response_truncated"');
    const res = await call('/stall-mid-body');
    expect(res.status).toBe(200);
    expect(res.bodyError).toBeDefined();
    expect(await metricValue(pair.b, 'meshauth_streams_reset_total', 'reason="app_response_truncated"')).toBe(
      before + 1,
    );
    expect((await call('/ok')).status).toBe(200);
  });

  it('ok/every log line of both sidecars is strict JSON with one component key', () => {
    for (const record of [...pair.logA.records(), ...pair.logB.records()]) {
      expect(typeof record.component).toBe('string');
      expect(typeof record.msg).toBe('string');
    }
  });
});

describe('app closes keep-alive connections early', () => {
  let eager: Server;
  let eagerPair: FaultPair;

  beforeAll(async () => {
    // Advertises keep-alive but drops every idle connection after 1 ms: B's pooled connection to the app is often
    // already closed (or closing) when the next request is written on it.
    eager = createServer((_req, res) => {
      res.writeHead(200, { 'content-length': '2', connection: 'keep-alive' }).end('ok');
    });
    eager.keepAliveTimeout = 1;
    await new Promise<void>((resolve) => eager.listen(0, '127.0.0.1', resolve));
    eagerPair = await startFaultPair(ca, (eager.address() as { port: number }).port);
  });
  afterAll(async () => {
    await eagerPair?.close();
    eager?.closeAllConnections();
    await new Promise<void>((resolve) => eager?.close(() => resolve()));
  });

  it('ok/sequential requests with pauses around the idle timeout all succeed', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) {
      const response = await request(`http://127.0.0.1:${eagerPair.a.sidecar.outboundPort}/k/${i}`, {
        headers: { host: 'b.mesh' },
        dispatcher: client,
      });
      await response.body.text();
      statuses.push(response.statusCode);
      await new Promise((r) => setTimeout(r, i % 4)); // fixed on purpose: pauses of 0–3 ms around the idle timeout
    }
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(
      await metricValue(eagerPair.b, 'meshauth_requests_rejected_total', 'code="MESHAUTH_ERR_UPSTREAM_UNAVAILABLE"'),
    ).toBe(0);
  });
});
