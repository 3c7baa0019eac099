// An endpoint's HTTP/1.1 client to a peer (`outbound.http2: false`) on real mTLS sockets, driven as the outbound drives
// it (endpoint.target(), then dispatch): a failed dial reaches the request as the PeerConnectError itself, before any
// request byte (what the retry and the probe classify), and a retired client (rotation, removal) lets the request it
// carries finish while the next one opens a client of its own; Endpoint.close's deadline ends what is left.
import { afterEach, describe, expect, it } from 'vitest';
import { CredentialHolder } from '../../src/agent/credential-holder.js';
import { Endpoint } from '../../src/sidecar/endpoints/endpoint.js';
import { Http1Client, type Http1Request } from '../../src/sidecar/http1-client.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { ClientTlsContext, PeerConnectError } from '../../src/tls/index.js';
import { type RawApp, type RawAppConnection, startRawApp } from '../helpers/raw-app.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/wait.js';

const GET: Http1Request = { method: 'GET', path: '/x', headers: ['host', 'b.mesh'], body: null };

/** An HTTP/1.1-only mTLS peer whose answers the test writes; every byte each connection receives is kept. */
async function startPeer(ca: TestCa, id: string): Promise<RawApp> {
  const svid = await ca.issue({ id });
  return startRawApp(undefined, {
    cert: svid.chainPem,
    key: svid.keyPem,
    ca: ca.bundlePem,
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: ['http/1.1'],
  });
}

interface Outcome {
  status: number;
  body: string;
  error?: Error;
}

/** Dispatches GET on `client`; resolves once the exchange completed or failed. */
function send(client: Http1Client): Promise<Outcome> {
  return new Promise((resolve) => {
    const outcome: Outcome = { status: 0, body: '' };
    client.dispatch(GET, {
      onConnect: () => undefined,
      onHeaders: (status: number) => {
        outcome.status = status;
        return true;
      },
      onData: (chunk: Buffer) => {
        outcome.body += chunk.toString('latin1');
        return true;
      },
      onComplete: () => resolve(outcome),
      onError: (error: Error) => resolve({ ...outcome, error }),
    });
  });
}

const PEER_ID = 'spiffe://example.org/ns/b/sa/b';
const OK = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok';

describe('outbound HTTP/1.1 client of an endpoint (mTLS)', () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** An endpoint at 127.0.0.1:`port` of a caller `a/a` that accepts only PEER_ID, over HTTP/1.1 only. */
  async function endpointAt(ca: TestCa, port: number): Promise<Endpoint> {
    const svid = await ca.issue({ id: ca.idFor('/ns/a/sa/a') });
    const tls = new ClientTlsContext(new CredentialHolder({ svid: svid.svid, bundle: ca.bundle }), { tls12: false });
    cleanups.push(() => tls.close());
    const endpoint = new Endpoint(
      '127.0.0.1',
      port,
      {
        routeKey: 'b.mesh',
        servername: '127.0.0.1',
        accepts: (id) => id.toString() === PEER_ID,
        ejectionChanged: () => undefined,
      },
      {
        tls,
        trustDomain: ca.trustDomain,
        connectTimeoutMs: 2_000,
        timeoutMs: 5_000,
        http2: false,
        metrics: new Metrics(),
        logger: silentLogger(),
      },
    );
    cleanups.push(() => endpoint.close(Date.now()));
    return endpoint;
  }

  function clientOf(endpoint: Endpoint): Http1Client {
    const target = endpoint.target();
    if (!(target instanceof Http1Client)) throw new Error('expected the HTTP/1.1 client at once');
    return target;
  }

  it.each([
    ['connect', 'a peer that is not the route’s', 'spiffe://example.org/ns/other/sa/other', 'identity'],
    ['connect', 'a closed port', undefined, 'connect'],
  ])(
    'fail/%s to %s: the request’s onError gets the PeerConnectError (%s), and no request byte left',
    async (_what, _to, id, phase) => {
      const ca = await TestCa.create();
      const peer = await startPeer(ca, id ?? PEER_ID);
      cleanups.push(() => peer.close());
      const port = peer.port;
      if (id === undefined) await peer.close();
      const outcome = await send(clientOf(await endpointAt(ca, port)));
      expect(outcome.error).toBeInstanceOf(PeerConnectError);
      expect((outcome.error as PeerConnectError).phase).toBe(phase);
      expect(peer.connections.map((connection) => connection.received)).toEqual(peer.connections.map(() => ''));
    },
  );

  it('ok/a retired client lets its request in flight finish; the next request opens a client and connection of its own', async () => {
    const ca = await TestCa.create();
    const peer = await startPeer(ca, PEER_ID);
    cleanups.push(() => peer.close());
    const endpoint = await endpointAt(ca, peer.port);
    const first = clientOf(endpoint);
    const inFlight = send(first);
    await until(
      'the first request reached the peer',
      () => peer.connections[0]?.received.endsWith('\r\n\r\n') === true,
    );
    expect(endpoint.peerId).toBe(PEER_ID);

    endpoint.retire(); // as at a rotation or the peer certificate's notAfter
    const second = clientOf(endpoint);
    expect(second).not.toBe(first);
    const next = send(second);
    await until('the next request reached the peer', () => peer.connections[1]?.received.endsWith('\r\n\r\n') === true);
    (peer.connections[1] as RawAppConnection).socket.write(OK);
    expect(await next).toEqual({ status: 200, body: 'ok' });

    (peer.connections[0] as RawAppConnection).socket.write(OK);
    expect(await inFlight).toEqual({ status: 200, body: 'ok' });
    await until(
      'the retired client closed its connection',
      () => first.open === 0 && peer.connections[0]?.closed === true,
    );
    expect(peer.connections[1]?.closed).toBe(false); // the current client keeps its connection
  });

  it('fail/Endpoint.close ends a retired client’s request still in flight at its deadline', async () => {
    const ca = await TestCa.create();
    const peer = await startPeer(ca, PEER_ID);
    cleanups.push(() => peer.close());
    const endpoint = await endpointAt(ca, peer.port);
    const client = clientOf(endpoint);
    const inFlight = send(client);
    await until('the request reached the peer', () => peer.connections[0]?.received.endsWith('\r\n\r\n') === true);
    endpoint.retire();
    await endpoint.close(Date.now() + 100);
    const outcome = await inFlight;
    expect((outcome.error as Error & { code?: string }).code).toBe('UND_ERR_SOCKET');
    await until('the connection closed', () => client.open === 0 && peer.connections[0]?.closed === true);
  });
});
