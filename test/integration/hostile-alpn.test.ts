// ALPN at the inbound: a client offering only protocols the sidecar does not speak gets the TLS alert
// no_application_protocol (120), never a connection in some other mode; a client offering none gets HTTP/1.1, and an
// HTTP/2 connection preface sent there (h2c prior knowledge over TLS) is refused as a bad HTTP/1.1 request.
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InboundServer, startInboundServer, type TestApp, type TestSidecar } from '../helpers/sidecar-harness.js';
import type { TestCa, TestSvid } from '../helpers/test-ca.js';

let ca: TestCa;
let app: TestApp;
let sidecar: TestSidecar;
let client: TestSvid;
let inbound: InboundServer;

beforeAll(async () => {
  inbound = await startInboundServer({ namespace: 'a' });
  ({ ca, app, sidecar, client } = inbound);
});
afterAll(async () => {
  await inbound?.close();
});

interface Outcome {
  readonly error?: string;
  readonly negotiated?: string | false | null;
  readonly reply: string;
}

/** An mTLS connection offering `alpn` (none when undefined) that writes `bytes` once connected. */
function exchange(alpn: string[] | undefined, bytes: string): Promise<Outcome> {
  return new Promise((resolve) => {
    let reply = '';
    const socket = connect(
      {
        host: '127.0.0.1',
        port: sidecar.sidecar.inboundPort,
        cert: client.chainPem,
        key: client.keyPem,
        ca: [ca.bundlePem],
        checkServerIdentity: () => undefined, // SVIDs carry no DNS name; the chain is verified against the bundle
        ...(alpn === undefined ? {} : { ALPNProtocols: alpn }),
      },
      () => socket.write(bytes),
    );
    socket.setTimeout(5_000, () => socket.destroy());
    socket.on('data', (d: Buffer) => {
      reply += d.toString('latin1');
    });
    socket.on('error', (e: Error) => resolve({ error: e.message, reply }));
    socket.on('close', () => resolve({ negotiated: socket.alpnProtocol, reply }));
  });
}

const GET = 'GET /alpn HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n';

describe('inbound ALPN', () => {
  it.each([[['foo']], [['h2c']], [['spdy/3', 'http/1.0']]])(
    'fail/only unknown protocols offered (%j) → alert no_application_protocol, nothing reaches the app',
    async (alpn) => {
      const seen = app.seen.length;
      const outcome = await exchange(alpn, GET);
      expect(outcome.error).toMatch(/no application protocol|alert number 120/);
      expect(outcome.reply).toBe('');
      expect(app.seen.length).toBe(seen);
    },
  );

  it('ok/no ALPN offered → HTTP/1.1 served', async () => {
    const outcome = await exchange(undefined, GET);
    expect(outcome.negotiated).toBe(false);
    expect(outcome.reply.split('\r\n', 1)[0]).toBe('HTTP/1.1 200 OK');
  });

  it('fail/no ALPN and an HTTP/2 preface (h2c prior knowledge) → 400, never served as HTTP/2', async () => {
    const seen = app.seen.length;
    const outcome = await exchange(undefined, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
    expect(outcome.reply.split('\r\n', 1)[0]).toBe('HTTP/1.1 400 Bad Request');
    expect(app.seen.length).toBe(seen);
  });

  it('ok/unknown protocols beside http/1.1 → http/1.1 negotiated and served', async () => {
    const outcome = await exchange(['foo', 'http/1.1'], GET);
    expect(outcome.negotiated).toBe('http/1.1');
    expect(outcome.reply.split('\r\n', 1)[0]).toBe('HTTP/1.1 200 OK');
  });
});
