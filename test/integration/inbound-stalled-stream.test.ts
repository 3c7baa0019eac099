// A caller that stops reading one response (its stream window at zero) is reset after the stream idle timeout.
// node:http2's own stream timeout counts writes of the whole session, so any other stream kept it from firing: two
// peers stalling downloads on several sessions, kept busy by requests the sidecar refuses itself, held every app
// connection and no other peer was served (found by an outside audit). The forward handler now times a write that
// waits for 'drain' itself.
import { createServer, type Server } from 'node:http';
import type { ClientHttp2Session, ClientHttp2Stream, IncomingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, mtlsH2Session } from '../helpers/raw-app.js';
import { startTestSidecar, type TestSidecar, testConfig } from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';

const TD = 'example.org';

describe('inbound h2: a stream whose response the peer stopped reading is reset, whatever else the session does', () => {
  let ca: TestCa;
  let client: TestSvid;
  let app: Server;
  let appOpen = 0;
  let sidecar: TestSidecar;

  beforeAll(async () => {
    ca = await TestCa.create(TD);
    client = await ca.issue({ id: ca.idFor('/ns/shop/sa/client') });
    app = createServer((req, res) => {
      req.resume();
      if (req.url === '/big') {
        // A large download: the sidecar fills the stream's window and then waits for the peer to read.
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const chunk = Buffer.alloc(64 * 1024, 0x61);
        let sent = 0;
        const pump = () => {
          while (sent < 64 * 1024 * 1024) {
            sent += chunk.length;
            if (!res.write(chunk)) {
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        pump();
        return;
      }
      res.end('ok');
    });
    app.on('connection', (s) => {
      appOpen++;
      s.once('close', () => appOpen--);
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    sidecar = await startTestSidecar(
      ca,
      ca.idFor('/ns/shop/sa/server'),
      testConfig({ appPort: (app.address() as AddressInfo).port, appTimeout: '1s' }),
      { inboundLimits: { streamIdleTimeoutMs: 1_500, sessionIdleTimeoutMs: 1_500, headersTimeoutMs: 1_000 } },
    );
  });
  afterAll(async () => {
    await sidecar?.sidecar.close(0);
    app?.closeAllConnections();
    await new Promise((r) => app?.close(r));
  });

  const get = (session: ClientHttp2Session, path: string) =>
    new Promise<number>((resolve) => {
      const stream = session.request({ ':method': 'GET', ':path': path }, { endStream: true });
      let status = -1;
      stream.on('response', (h: IncomingHttpHeaders) => {
        status = Number(h[':status']);
      });
      stream.on('error', () => undefined);
      stream.on('close', () => resolve(status));
      stream.resume();
    });

  it('ok/a stalled stream alone is reset after the stream idle timeout', async () => {
    const session = await mtlsH2Session(sidecar.sidecar.inboundPort, client, ca.bundlePem);
    const stalled = session.request({ ':method': 'GET', ':path': '/big' }, { endStream: true });
    stalled.on('error', () => undefined);
    stalled.pause(); // never read: no WINDOW_UPDATE once the window is used up
    expect(await eventually(() => stalled.closed, 8_000)).toBe(true);
    session.destroy();
  });

  it('ok/a stalled stream is reset while another stream of the session keeps the session busy (it never was)', async () => {
    const session = await mtlsH2Session(sidecar.sidecar.inboundPort, client, ca.bundlePem);
    const stalled: ClientHttp2Stream = session.request({ ':method': 'GET', ':path': '/big' }, { endStream: true });
    stalled.on('error', () => undefined);
    stalled.pause();
    // One small request every 300 ms on the same session (well under any idle limit).
    const keeper = setInterval(() => void get(session, '/'), 300);
    try {
      expect(await eventually(() => stalled.closed, 8_000), 'stalled stream reset').toBe(true);
      expect(stalled.rstCode).not.toBe(0);
    } finally {
      clearInterval(keeper);
      session.destroy();
    }
  });

  it('ok/two peers stalling downloads on several sessions, kept busy by refused requests, cannot hold every app connection', async () => {
    // appConnections 4 → share per peer floor(4 × 0.75) = 3.
    const small = await startTestSidecar(
      ca,
      ca.idFor('/ns/shop/sa/server2'),
      testConfig({ appPort: (app.address() as AddressInfo).port, appTimeout: '1s' }),
      {
        inboundLimits: {
          streamIdleTimeoutMs: 1_500,
          sessionIdleTimeoutMs: 60_000,
          headersTimeoutMs: 1_000,
          appConnections: 4,
        },
      },
    );
    const attackers = await Promise.all(
      ['/ns/evil/sa/one', '/ns/evil/sa/two'].map((p) => ca.issue({ id: ca.idFor(p) })),
    );
    const sessions = await Promise.all(
      [...attackers, ...attackers, ...attackers].map((svid) =>
        mtlsH2Session(small.sidecar.inboundPort, svid, ca.bundlePem),
      ),
    );
    const stalled: ClientHttp2Stream[] = [];
    for (const session of sessions) {
      // A large connection window: only each stream's own window (64 KiB) stalls, the session stays usable.
      session.setLocalWindowSize(16 * 1024 * 1024);
      const s = session.request({ ':method': 'GET', ':path': '/big' }, { endStream: true });
      s.on('error', () => undefined);
      s.pause();
      stalled.push(s);
    }
    // Any DATA the sidecar sends on a session kept node:http2's stream timers from firing; the cheapest needs no
    // app: a request the sidecar refuses itself (400, a host that differs from :authority).
    const refused = (session: ClientHttp2Session) => {
      const s = session.request({ ':method': 'GET', ':path': '/', host: 'other.example' }, { endStream: true });
      s.on('error', () => undefined);
      s.resume();
    };
    const keepers = sessions.map((session) => setInterval(() => refused(session), 300));
    try {
      expect(await eventually(() => stalled.every((s) => s.closed), 10_000), 'every stalled stream reset').toBe(true);
      const legit = await mtlsH2Session(small.sidecar.inboundPort, client, ca.bundlePem);
      const status = await get(legit, '/');
      legit.destroy();
      expect(status, 'a legitimate peer is served').toBe(200);
    } finally {
      for (const k of keepers) clearInterval(k);
      for (const s of sessions) s.destroy();
      await small.sidecar.close(0);
    }
  });
});
