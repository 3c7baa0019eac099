// Requests node:http refuses or ends before the sidecar's own checks get the sidecar's answer, a count and one log
// line, found by an outside test (2026-12-03): an HTTP/1.1 request without Host got node:http's bare 400 and an
// `Expect` other than 100-continue its bare 417 on the outbound, the inbound and the external listener, neither
// counted nor logged; a parse error in a request pipelined behind one in flight on the outbound was answered but not
// counted; a broken chunked body on the inbound and the external listener was reported twice (the 400 plus a
// `client_aborted` reset, or plus the 401 of the token check that was still pending).
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { EXTERNAL_TD, type ExternalSidecar, startExternalSidecar } from '../helpers/external-sidecar.js';
import { type LogLines, logLines } from '../helpers/log-lines.js';
import { driveFakeClock } from '../helpers/raw-h2-client.js';
import { rawTlsExchange } from '../helpers/raw-tls.js';
import { startTestSidecar, type TestApp, type TestSidecar } from '../helpers/sidecar-harness.js';
import { rawTcpExchange } from '../helpers/tcp-client.js';
import type { TestCa, TestSvid } from '../helpers/test-ca.js';

const B_ID = `spiffe://${EXTERNAL_TD}/ns/a/sa/b`;
let external: ExternalSidecar;
let ca: TestCa;
let app: TestApp;
let a: TestSidecar;
let b: TestSidecar;
let client: TestSvid;
const logA = logLines('a');
const logB = logLines('b');

beforeAll(async () => {
  external = await startExternalSidecar({ id: B_ID, logger: logB.logger });
  ({ ca, app, sc: b } = external);
  const configA = sidecarConfigFromObject(
    {
      trustDomain: EXTERNAL_TD,
      ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent', token: '/nonexistent' },
      inbound: { listen: '127.0.0.1:0', app: '127.0.0.1:1' },
      outbound: {
        listen: '127.0.0.1:0',
        routes: { 'b.mesh': { address: `127.0.0.1:${b.sidecar.inboundPort}`, ids: [B_ID] } },
      },
      admin: { listen: '127.0.0.1:0' },
    },
    'a.yaml',
  );
  a = await startTestSidecar(ca, `spiffe://${EXTERNAL_TD}/ns/a/sa/a`, configA, { logger: logA.logger });
  client = await ca.issue({ id: `spiffe://${EXTERNAL_TD}/ns/a/sa/client` });
});

afterAll(async () => {
  await a?.sidecar.close(0);
  await external?.close();
});

type Listener = 'outbound' | 'inbound' | 'external';

interface Target {
  readonly sidecar: () => TestSidecar;
  readonly log: LogLines;
  readonly send: (bytes: string) => Promise<string>;
}

const targets: Record<Listener, Target> = {
  outbound: {
    sidecar: () => a,
    log: logA,
    // The outbound keeps a connection after a refusal it can frame (417): the reply is whole after 2 s of silence.
    // A head that never ends waits past the outbound's headersTimeout (10 s) for its answer.
    send: async (bytes) => {
      const idleMs = bytes.includes('\r\n\r\n') ? 2_000 : 15_000;
      return (
        await rawTcpExchange(a.sidecar.outboundPort, Buffer.from(bytes, 'latin1'), false, idleMs)
      ).bytes.toString();
    },
  },
  inbound: {
    sidecar: () => b,
    log: logB,
    send: (bytes) => rawTlsExchange(b.sidecar.inboundPort, client, ca.rootPem, bytes),
  },
  external: {
    sidecar: () => b,
    log: logB,
    // The external listener asks for no client certificate; rawTlsExchange offers one, which it ignores.
    send: (bytes) => rawTlsExchange(b.sidecar.externalPort as number, client, ca.rootPem, bytes),
  },
};

/** meshauth_requests_rejected_total of one listener, every code. */
async function rejected(listener: Listener): Promise<number> {
  const values = (await targets[listener].sidecar().metrics.requestsRejected.get()).values;
  return values.filter((v) => v.labels.direction === listener).reduce((sum, v) => sum + v.value, 0);
}

/** The warn lines one listener wrote since `from`. */
function warnings(listener: Listener, from: number): Record<string, unknown>[] {
  return targets[listener].log.lines.slice(from).filter((l) => l.direction === listener && l.level === 'warn');
}

/**
 * Sends `bytes` (through `send`, the listener's own by default); expects the JSON error `code` with `status`, one more
 * rejection counted and one log line.
 */
async function expectOneRefusal(
  listener: Listener,
  bytes: string,
  status: number,
  code: string,
  send: (bytes: string) => Promise<string> = targets[listener].send,
): Promise<void> {
  const target = targets[listener];
  const before = await rejected(listener);
  const from = target.log.lines.length;
  const seen = app.seen.length;
  const reply = await send(bytes);
  expect(reply.split('\r\n', 1)[0]).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
  expect(JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)).code).toBe(code);
  expect(await rejected(listener)).toBe(before + 1);
  const lines = warnings(listener, from);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatchObject({ code, status });
  expect(app.seen.length).toBe(seen); // nothing reached the app
}

const LISTENERS: readonly Listener[] = ['outbound', 'inbound', 'external'];

/**
 * The outbound's send with setTimeout faked, the fake clock moved on half a second at a time (15 s at most) until the
 * reply is in. OUTBOUND_LIMITS.headersTimeoutMs (10 s) is not configurable; the outbound's head timer is a setTimeout
 * armed as the connection arrives, so it runs out on the fake clock instead of being waited out. The client's own
 * give-up (a socket timer, not faked) cannot come first in the moment of real time this takes.
 */
async function sendOnFakeClock(bytes: string): Promise<string> {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  let reply: Promise<string>;
  try {
    let settled = false;
    reply = targets.outbound.send(bytes).finally(() => {
      settled = true;
    });
    await driveFakeClock(() => settled, 15_000, 500);
  } finally {
    vi.useRealTimers();
  }
  return reply;
}

describe('requests node:http refuses on the sidecar listeners: answered, counted once, logged once', () => {
  it.each(LISTENERS)('fail/%s: HTTP/1.1 without Host → 400 MESHAUTH_ERR_BAD_REQUEST', async (listener) => {
    await expectOneRefusal(listener, 'GET /x HTTP/1.1\r\n\r\n', 400, 'MESHAUTH_ERR_BAD_REQUEST');
  });

  it.each(LISTENERS)(
    'fail/%s: an Expect other than 100-continue → 417 MESHAUTH_ERR_EXPECTATION_FAILED',
    async (listener) => {
      await expectOneRefusal(
        listener,
        'GET /x HTTP/1.1\r\nHost: b.mesh\r\nExpect: 200-ok\r\n\r\n',
        417,
        'MESHAUTH_ERR_EXPECTATION_FAILED',
      );
    },
  );

  it('fail/outbound: a parse error in a request pipelined behind one in flight is counted and logged once', async () => {
    const before = await rejected('outbound');
    const from = logA.lines.length;
    const reply = await targets.outbound.send(
      'GET http://b.mesh/first HTTP/1.1\r\nHost: b.mesh\r\n\r\nGET /second HTTP/1.1\nHost: b.mesh\n\n',
    );
    expect(reply).toContain('"code":"MESHAUTH_ERR_BAD_REQUEST"');
    expect(await rejected('outbound')).toBe(before + 1);
    expect(warnings('outbound', from)).toHaveLength(1);
  });

  it.each(['inbound', 'external'] as const)(
    'fail/%s: a broken chunked body → one 400 counted and one log line, nothing else',
    async (listener) => {
      const before = await rejected(listener);
      const resetsBefore = (await b.metrics.streamsReset.get()).values.reduce((sum, v) => sum + v.value, 0);
      const from = logB.lines.length;
      const reply = await targets[listener].send(
        'POST /upload HTTP/1.1\r\nHost: b.mesh\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
      );
      expect(reply.split('\r\n', 1)[0]).toBe('HTTP/1.1 400 Bad Request');
      expect(await rejected(listener)).toBe(before + 1);
      expect((await b.metrics.streamsReset.get()).values.reduce((sum, v) => sum + v.value, 0)).toBe(resetsBefore);
      const lines = warnings(listener, from);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ code: 'MESHAUTH_ERR_BAD_REQUEST' });
    },
  );

  it('fail/outbound: a head that never finishes (slowloris) → 408 MESHAUTH_ERR_REQUEST_TIMEOUT, as on the inbound', async () => {
    await expectOneRefusal(
      'outbound',
      'GET /x HTTP/1.1\r\nHost: b.mesh\r\nX-Slow: 1',
      408,
      'MESHAUTH_ERR_REQUEST_TIMEOUT',
      sendOnFakeClock,
    );
  }, 20_000);

  it('fail/outbound: a connection that sends nothing → 408 MESHAUTH_ERR_REQUEST_TIMEOUT at the same head timeout', async () => {
    // The outbound's lean lane holds a new connection until its first bytes: without a timer of its own a silent one
    // waited 65 s for the keep-alive timeout and was dropped unanswered and uncounted (found in review).
    await expectOneRefusal('outbound', '', 408, 'MESHAUTH_ERR_REQUEST_TIMEOUT', sendOnFakeClock);
  }, 20_000);

  it.each(LISTENERS)('ok/%s still serves a well-formed request afterwards', async (listener) => {
    const reply = await targets[listener].send('GET /ok HTTP/1.1\r\nHost: b.mesh\r\nConnection: close\r\n\r\n');
    // The external listener asks for a bearer token; any JSON answer shows the process is up and serving.
    expect(reply).toMatch(listener === 'external' ? /^HTTP\/1\.1 401 / : /^HTTP\/1\.1 200 /);
  });
});
