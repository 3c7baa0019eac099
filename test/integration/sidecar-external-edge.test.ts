// The external listener (server TLS + bearer token) as an outside security test (2026-12-02) found it: one client
// address could take every connection place of the public port, and client-sent forwarding / client-certificate
// headers reached the app unchanged. Now one address holds at most a quarter of the places, and those headers are
// dropped as at the edge gateway. An outside review the same day: the per-source count must not leak over closes,
// refused connections and failed handshakes.
import { connect as netConnect } from 'node:net';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endUserToken } from '../helpers/end-user-keys.js';
import {
  EXTERNAL_ISSUER,
  EXTERNAL_TD,
  type ExternalSidecar,
  startExternalSidecar,
} from '../helpers/external-sidecar.js';
import { eventually } from '../helpers/raw-app.js';

/** The external sidecar with the tests' client: a token, TLS connections from any 127.0.0.x, drained. */
interface ExternalEdge extends ExternalSidecar {
  readonly token: string;
  /** A TLS connection to the external port from `localAddress`; resolves once the handshake is done (or fails). */
  open(localAddress: string): Promise<TLSSocket | undefined>;
  /** Resolves once the external listener holds no connection (it has seen every close). */
  drained(): Promise<void>;
}

async function startExternalEdge(maxConnections: number): Promise<ExternalEdge> {
  const external = await startExternalSidecar({ maxConnections, vouchers: [`spiffe://${EXTERNAL_TD}/ns/a/sa/api`] });
  const { ca, sc } = external;
  const token = await endUserToken(external.key, EXTERNAL_ISSUER, 'api', 'alice');
  const sockets = new Set<TLSSocket>();
  const open = (localAddress: string) =>
    new Promise<TLSSocket | undefined>((resolve) => {
      const s = tlsConnect({
        host: '127.0.0.1',
        port: sc.sidecar.externalPort as number,
        ...({ localAddress } as object), // passed on to net.connect (not in @types/node's TLS options)
        ca: ca.rootPem,
        servername: 'localhost',
        ALPNProtocols: ['http/1.1'],
      });
      sockets.add(s);
      const timer = setTimeout(() => resolve(undefined), 2_000);
      s.once('secureConnect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.on('error', () => {
        clearTimeout(timer);
        resolve(undefined);
      });
    });
  const close = async () => {
    for (const s of sockets) s.destroy();
    await external.close();
  };
  const drained = async () => {
    const held = async () =>
      (await sc.metrics.connectionsOpen.get()).values.find((v) => v.labels.direction === 'external')?.value ?? 0;
    expect(await eventually(async () => (await held()) === 0)).toBe(true);
  };
  return { ...external, token, open, drained, close };
}

/** Sends one request on `s`, resolves with the response text (until close or 2 s). */
function ask(s: TLSSocket, head: string): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    s.on('data', (d: Buffer) => {
      out += d.toString('latin1');
    });
    const timer = setTimeout(() => resolve(out), 2_000);
    s.once('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    s.write(head);
  });
}

async function churn(edge: ExternalEdge, localAddress: string): Promise<void> {
  // refused connections (third from the source), failed handshakes (garbage), and TLS closes, repeated
  for (let round = 0; round < 4; round++) {
    const a = await edge.open(localAddress);
    const b = await edge.open(localAddress);
    const refused = await edge.open(localAddress);
    expect(refused).toBeUndefined();
    a?.destroy();
    b?.destroy();
    await edge.drained();
    await new Promise<void>((resolve) => {
      const raw = netConnect({ host: '127.0.0.1', port: edge.sc.sidecar.externalPort as number, localAddress });
      raw.on('error', () => undefined);
      raw.once('connect', () => raw.end('not a client hello'));
      raw.once('close', () => resolve());
    });
    await edge.drained();
  }
}

describe('external listener: a public port', () => {
  const MAX_CONNECTIONS = 16;
  let edge: ExternalEdge;
  beforeAll(async () => {
    edge = await startExternalEdge(MAX_CONNECTIONS);
  });
  afterAll(async () => {
    await edge?.close();
  });

  it('fail/client-sent X-Forwarded-User / X-Forwarded-For / Forwarded / X-Real-IP / Client-Cert never reach the app', async () => {
    const s = await edge.open('127.0.0.1');
    expect(s).toBeDefined();
    const answer = await ask(
      s as TLSSocket,
      `GET /x HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${edge.token}\r\n` +
        'X-Forwarded-User: admin\r\nX-Forwarded-Email: admin@example.org\r\nX-Forwarded-Groups: admins\r\n' +
        'X-Forwarded-For: 10.0.0.1\r\nForwarded: for=10.0.0.1\r\nX-Real-IP: 10.0.0.1\r\n' +
        'Client-Cert: :MIIB:\r\nConnection: close\r\n\r\n',
    );
    expect(answer.startsWith('HTTP/1.1 200')).toBe(true);
    const seen = edge.app.seen.at(-1)?.headers ?? {};
    // An app behind an auth proxy trusts X-Forwarded-User; none of them may come from the caller.
    expect({
      user: seen['x-forwarded-user'],
      email: seen['x-forwarded-email'],
      groups: seen['x-forwarded-groups'],
      forwarded: seen.forwarded,
      realIp: seen['x-real-ip'],
      clientCert: seen['client-cert'],
    }).toEqual({
      user: undefined,
      email: undefined,
      groups: undefined,
      forwarded: undefined,
      realIp: undefined,
      clientCert: undefined,
    });
    // X-Forwarded-For: absent or the real client address, never the client's claim.
    expect(seen['x-forwarded-for']).not.toBe('10.0.0.1');
  });

  it('fail/the client addresses of CDNs and other proxies (True-Client-IP, CF-Connecting-IP, …) never reach the app', async () => {
    const names = [
      'X-Forwarded',
      'Forwarded-For',
      'X-Client-IP',
      'True-Client-IP',
      'CF-Connecting-IP',
      'Fastly-Client-IP',
      'X-Cluster-Client-IP',
      'X-Original-Forwarded-For',
    ];
    const s = await edge.open('127.0.0.1');
    expect(s).toBeDefined();
    const answer = await ask(
      s as TLSSocket,
      `GET /x HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${edge.token}\r\n` +
        names.map((name) => `${name}: 10.0.0.1\r\n`).join('') +
        'Connection: close\r\n\r\n',
    );
    expect(answer.startsWith('HTTP/1.1 200')).toBe(true);
    const seen = edge.app.seen.at(-1)?.headers ?? {};
    // Client-IP libraries read these before X-Forwarded-For: an allow-list or rate limit would take the forged one.
    expect(names.filter((name) => seen[name.toLowerCase()] !== undefined)).toEqual([]);
  });

  it('fail/one client address holding idle TLS connections cannot take every place: another address is served', async () => {
    // 127.0.0.1 opens maxConnections TLS connections and sends nothing (each lives headersTimeout, 10 s, and can
    // be renewed as fast as handshakes go). The external listener has no per-address share (the gateway's public
    // listener caps one address at a quarter: PUBLIC_LIMITS.maxConnectionsPerAddress 1,024 of 4,096).
    // Sanity: from 127.0.0.2 a request is served while the port is not full.
    const first = await edge.open('127.0.0.2');
    expect(first).toBeDefined();
    const served = await ask(
      first as TLSSocket,
      `GET /x HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${edge.token}\r\nConnection: close\r\n\r\n`,
    );
    expect(served.startsWith('HTTP/1.1 200')).toBe(true);
    const held: TLSSocket[] = [];
    for (let i = 0; i < MAX_CONNECTIONS; i++) {
      const s = await edge.open('127.0.0.1');
      if (s !== undefined) held.push(s);
    }
    const other = await edge.open('127.0.0.2');
    // Before the per-address share, the connection from 127.0.0.2 was dropped at accept (max_connections).
    expect(other).toBeDefined();
    const answer = await ask(
      other as TLSSocket,
      `GET /x HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${edge.token}\r\nConnection: close\r\n\r\n`,
    );
    expect(answer.startsWith('HTTP/1.1 200')).toBe(true);
    for (const s of held) s.destroy();
    other?.destroy();
    first?.destroy();
    // The listener has seen the closes before the next test.
    await edge.drained();
  });
});

describe('external listener: per-source count', () => {
  let edge: ExternalEdge;
  beforeAll(async () => {
    edge = await startExternalEdge(8); // a quarter: 2 per source
  });
  afterAll(async () => {
    await edge?.close();
  });

  it('ok/after refusals, failed handshakes and closes the source gets its two places back', async () => {
    await churn(edge, '127.0.0.3');
    const a = await edge.open('127.0.0.3');
    const b = await edge.open('127.0.0.3');
    expect(a).toBeDefined();
    expect(b).toBeDefined();
    const text = await edge.sc.metrics.registry.getSingleMetricAsString('meshauth_connections_rejected_total');
    expect(text).toContain('reason="max_connections_per_source"} 4');
    a?.destroy();
    b?.destroy();
  });
});
