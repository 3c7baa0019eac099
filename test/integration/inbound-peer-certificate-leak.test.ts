// The inbound reads each mTLS peer without getPeerX509Certificate(): on a server socket that call copies the first
// certificate of the chain the client sent and drops the original from the TLS session without freeing it (Node 20
// and 24 with OpenSSL 3), one native intermediate certificate (~5.5 KB of RSS, invisible to the V8 heap) per
// connection. A handshake storm of 300 good connections a second grew the server sidecar's RSS linearly
// (bench/profile/storm-memory.ts: Node 20, 10,000 connections, +45 MiB with the call, flat without it). Counted here
// on real sockets: the calls the sidecar makes on its server-side sockets while good peers connect and are served.
import { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { rawTlsExchange } from '../helpers/raw-tls.js';
import { type InboundServer, startInboundServer, type TestApp, type TestSidecar } from '../helpers/sidecar-harness.js';
import type { TestCa, TestSvid } from '../helpers/test-ca.js';

const CONNECTIONS = 20;

describe('inbound peer certificate: no getPeerX509Certificate() per connection (native leak)', () => {
  let ca: TestCa;
  let app: TestApp;
  let server: TestSidecar;
  let client: TestSvid;
  let inbound: InboundServer;

  beforeAll(async () => {
    inbound = await startInboundServer({ namespace: 'a' });
    ({ ca, app, sidecar: server, client } = inbound);
  });
  afterAll(async () => {
    await inbound?.close();
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  /** CONNECTIONS mTLS connections in turn, each a `GET <prefix>/<i>` answered 200 and closed. */
  async function serveConnections(prefix: string): Promise<void> {
    for (let i = 0; i < CONNECTIONS; i++) {
      const reply = await rawTlsExchange(
        server.sidecar.inboundPort,
        client,
        ca.bundlePem,
        `GET ${prefix}/${i} HTTP/1.1\r\nHost: server.test\r\nConnection: close\r\n\r\n`,
      );
      expect(reply.startsWith('HTTP/1.1 200 '), reply.slice(0, 80)).toBe(true);
    }
  }

  it(`serves ${CONNECTIONS} verified connections without reading a peer through getPeerX509Certificate()`, async () => {
    const original = TLSSocket.prototype.getPeerX509Certificate;
    let serverSideCalls = 0;
    vi.spyOn(TLSSocket.prototype, 'getPeerX509Certificate').mockImplementation(function (this: TLSSocket) {
      if ((this as TLSSocket & { _tlsOptions?: { isServer?: boolean } })._tlsOptions?.isServer === true) {
        serverSideCalls++;
      }
      return original.call(this);
    });
    const seenBefore = app.seen.length;
    await serveConnections('/leak');
    // Each connection was verified as before: the app saw the peer's ID and leaf hash.
    const seen = app.seen.slice(seenBefore);
    expect(seen).toHaveLength(CONNECTIONS);
    for (const request of seen) {
      expect(request.headers['x-forwarded-client-cert']).toMatch(
        new RegExp(`^By=${ca.idFor('/ns/a/sa/server')};Hash=[0-9a-f]{64};URI=${ca.idFor('/ns/a/sa/client')}$`),
      );
    }
    expect(serverSideCalls).toBe(0);
  });

  // Node 24's tls.Server makes the same native call itself, before any listener sees the socket, whenever a client
  // certificate was asked for and verified (Node 20's does not): the inbound starts its handshakes without
  // tls.Server (src/platform/tls-accept.ts). Counted on the native handle, where that call is made.
  it(`serves ${CONNECTIONS} verified connections without the native getPeerX509Certificate() call either`, async () => {
    const probe = new TLSSocket(new Socket());
    const handle = (probe as unknown as { _handle: object })._handle;
    const tlsWrap = Object.getPrototypeOf(handle) as { getPeerX509Certificate: (...args: unknown[]) => unknown };
    probe.destroy();
    const original = tlsWrap.getPeerX509Certificate;
    let nativeCalls = 0;
    vi.spyOn(tlsWrap, 'getPeerX509Certificate').mockImplementation(function (this: unknown, ...args: unknown[]) {
      nativeCalls++;
      return original.apply(this, args);
    });
    await serveConnections('/native');
    // Only the inbound's handshakes ran in the window (the test's client reads its server through getPeerCertificate).
    expect(nativeCalls).toBe(0);
  });
});
