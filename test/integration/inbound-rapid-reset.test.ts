// HTTP/2 rapid reset (CVE-2023-44487) against the inbound: a peer that only ever opens a stream and cancels it
// (HEADERS + RST_STREAM) never holds more than one stream, so the concurrent-stream limit bounds nothing, and each
// pair cost the app a connection, started and cut (about 1,100 connections for 2,000 pairs before nghttp2's own
// limit stepped in; found by an outside audit). The session is now closed with GOAWAY once its peer reset 100
// streams before their response and more than half of all it opened, and a request whose caller left before it
// was written is dropped without cutting the app connection it was given. CONTINUATION, PING and SETTINGS floods are
// cut by node:http2 (nghttp2's limits); each such session is counted once under the gateway's h2_* reasons with at
// most one warn line (before, the inbound cut them silently).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logLines } from '../helpers/log-lines.js';
import { eventually } from '../helpers/raw-app.js';
import { h2Frame, hpackBlock, type RawH2Client, rawH2Client } from '../helpers/raw-h2-client.js';
import { startTestSidecar, type TestSidecar, testConfig } from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';

// Fixed pauses inside the floods on purpose: they pace the attacker's writes (and let the sidecar read), not wait.
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const GOAWAY = 0x7;

const GET_ROOT = hpackBlock([
  [':method', 'GET'],
  [':scheme', 'https'],
  [':path', '/'],
  [':authority', 'server.shop'],
]);

describe('inbound h2: rapid reset', () => {
  let ca: TestCa;
  let client: TestSvid;
  let app: Server;
  let appConnections = 0;
  const appPaths: string[] = [];
  let sidecar: TestSidecar;
  const log = logLines('inbound');
  const rawMtls = (): Promise<RawH2Client> => rawH2Client(sidecar.sidecar.inboundPort, ca.bundlePem, client);

  beforeAll(async () => {
    ca = await TestCa.create('example.org');
    client = await ca.issue({ id: ca.idFor('/ns/evil/sa/resetter') });
    app = createServer((req, res) => {
      appPaths.push(req.url ?? '');
      req.resume();
      setTimeout(() => res.end('ok'), 50); // any real work
    });
    app.on('connection', () => appConnections++);
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    sidecar = await startTestSidecar(
      ca,
      ca.idFor('/ns/shop/sa/server'),
      testConfig({ appPort: (app.address() as AddressInfo).port }),
      { logger: log.logger },
    );
  });
  afterAll(async () => {
    await sidecar?.sidecar.close(0);
    app?.closeAllConnections();
    await new Promise((r) => app?.close(r));
  });

  it.each([
    ['CANCEL', 0x8, 1],
    // RST_STREAM(NO_ERROR) leaves rstCode at 0: a first version counted only non-zero codes (found by a review).
    ['NO_ERROR', 0x0, 2],
  ])(
    'ok/a session sending HEADERS+RST_STREAM(%s) pairs is closed with GOAWAY before it churns the app connections',
    async (_name, code, counted) => {
      const connectionsBefore = appConnections;
      const { socket, received } = await rawMtls();
      const cancel = Buffer.alloc(4);
      cancel.writeUInt32BE(code);
      const PAIRS = 2_000;
      for (let batch = 0; batch < PAIRS / 100; batch++) {
        const out: Buffer[] = [];
        for (let i = 0; i < 100; i++) {
          const id = 2 * (batch * 100 + i) + 1;
          out.push(h2Frame(1, 0x4 | 0x1, id, GET_ROOT), h2Frame(3, 0, id, cancel));
        }
        if (socket.destroyed) break;
        socket.write(Buffer.concat(out));
        await sleep(20);
      }
      expect(await eventually(() => received.some((f) => f.type === GOAWAY), 5_000), 'GOAWAY from the sidecar').toBe(
        true,
      );
      socket.destroy();
      // Before: about 1,100 app connections for 2,000 pairs.
      expect(appConnections - connectionsBefore, 'app connections opened for streams cancelled at once').toBeLessThan(
        200,
      );
      const metrics = await sidecar.metrics.registry.metrics();
      expect(metrics).toContain(
        `meshauth_connections_rejected_total{direction="inbound",reason="premature_reset"} ${counted}`,
      );
    },
  );

  /** A GET on a new connection gets a response HEADERS: the sidecar serves on after the flood. */
  async function servesOnNewConnection(): Promise<void> {
    const after = await rawMtls();
    after.socket.write(h2Frame(1, 0x4 | 0x1, 1, GET_ROOT));
    expect(
      await eventually(() => after.received.some((f) => f.type === 1), 5_000),
      'a response HEADERS on a new connection',
    ).toBe(true);
    after.close();
  }

  /** Sessions ended by an HTTP/2 error so far, by reason, and the log lines (written or suppressed) about them. */
  async function sessionErrors(): Promise<{ counted: Record<string, number>; lines: number }> {
    const counted: Record<string, number> = {};
    for (const v of (await sidecar.metrics.connectionsRejected.get()).values) {
      if (v.labels.direction === 'inbound' && String(v.labels.reason).startsWith('h2_')) {
        counted[String(v.labels.reason)] = v.value;
      }
    }
    const suppressed = (await sidecar.metrics.logLinesSuppressed.get()).values.find(
      (v) => v.labels.event === 'h2_session_error',
    );
    return { counted, lines: log.find({ event: 'h2_session_error' }).length + (suppressed?.value ?? 0) };
  }

  /**
   * The flooding session was counted exactly once as h2_protocol_error (nghttp2's flood and CONTINUATION limits on
   * Node 20 and 24) with one log line, written or, inside the rate-limit window, suppressed; a written line names
   * the peer.
   */
  async function countedOnce(before: Awaited<ReturnType<typeof sessionErrors>>): Promise<void> {
    const total = (c: Record<string, number>) => Object.values(c).reduce((a, b) => a + b, 0);
    expect(
      await eventually(async () => total((await sessionErrors()).counted) > total(before.counted), 5_000),
      'the session error counted',
    ).toBe(true);
    const after = await sessionErrors();
    expect(after.counted.h2_protocol_error ?? 0).toBe((before.counted.h2_protocol_error ?? 0) + 1);
    expect(total(after.counted)).toBe(total(before.counted) + 1);
    expect(after.lines).toBe(before.lines + 1);
    for (const line of log.find({ event: 'h2_session_error' })) {
      expect(line).toMatchObject({
        direction: 'inbound',
        reason: 'h2_protocol_error',
        peer: client.svid.id.toString(),
      });
    }
  }

  it('fail/a CONTINUATION flood (a header block that never ends) is cut, counted once, nothing reaches the app, the sidecar serves on', async () => {
    const before = await sessionErrors();
    const flood = await rawMtls();
    flood.socket.write(
      h2Frame(
        1,
        0,
        1,
        hpackBlock([
          [':method', 'GET'],
          [':path', '/continuation'],
        ]),
      ),
    );
    const filler = h2Frame(9, 0, 1, hpackBlock([['x-a', 'b'.repeat(100)]]));
    for (let i = 0; i < 20_000 && !flood.ended(); i++) {
      flood.socket.write(filler);
      if (i % 500 === 0) await sleep(1);
    }
    expect(await eventually(() => flood.ended(), 5_000), 'the flooding connection ended by the sidecar').toBe(true);
    flood.close();
    expect(appPaths).not.toContain('/continuation');
    await countedOnce(before);
    await servesOnNewConnection();
  });

  // PING and SETTINGS each oblige an ACK: a peer that sends them without reading makes the ACKs pile up here.
  it.each([
    ['PING', h2Frame(6, 0, 0, Buffer.alloc(8))],
    ['SETTINGS', h2Frame(4, 0, 0, Buffer.alloc(0))],
  ])('fail/a %s flood whose ACKs are never read is cut, counted once, the sidecar serves on', async (_name, frame) => {
    const before = await sessionErrors();
    const flood = await rawMtls();
    flood.socket.pause(); // never read: the sidecar's ACKs pile up on its side
    for (let i = 0; i < 100_000 && !flood.socket.destroyed; i++) {
      flood.socket.write(frame);
      if (i % 1_000 === 0) await sleep(1);
    }
    flood.socket.resume();
    expect(await eventually(() => flood.ended(), 5_000), 'the flooding connection ended by the sidecar').toBe(true);
    flood.close();
    await countedOnce(before);
    await servesOnNewConnection();
  });
});
