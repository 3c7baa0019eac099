// The CA client's transport (node:https): a handshake held at the CA's door is waited for (its own limit, longer
// than the idle timeout); a CA silent before its head, a connection closed mid-body or a body that
// stalls past the timeout is MESHAUTH_ERR_CA_UNAVAILABLE (reason unreachable), never a half-read answer; an abort
// mid-body throws the caller's own reason; NODE_TLS_REJECT_UNAUTHORIZED=0 does not turn the CA checks off. The "CA"
// is an HTTPS server with a real serving certificate of the CA's SPIFFE ID.
import { createServer, type Server } from 'node:https';
import { type AddressInfo, createServer as createTcpServer, type Socket, type Server as TcpServer } from 'node:net';
import { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchBundle } from '../../src/agent/ca-client.js';
import { MeshauthError } from '../../src/errors/index.js';
import { TestCa } from '../helpers/test-ca.js';

let ca: TestCa;
let server: Server;
let caUrl: string;

/**
 * '/silent/…' never answers; '/whole/…' answers a bundle; every other path sends a head promising 4,096 bytes,
 * then 100, then what it says.
 */
beforeAll(async () => {
  ca = await TestCa.create();
  const serving = await ca.issue({ id: ca.idFor('/meshauth/ca'), ipAddresses: ['127.0.0.1'] });
  server = createServer({ cert: serving.chainPem, key: serving.keyPem }, (req, res) => {
    if (req.url?.startsWith('/silent/')) return;
    if (req.url?.startsWith('/whole/')) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bundle: [ca.bundlePem] }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '4096' });
    res.write(`{"bundle":["${'x'.repeat(88)}`);
    if (req.url?.startsWith('/cut/')) setImmediate(() => res.socket?.destroy());
    // '/stall/': nothing more until the client gives up (the server closes it in afterAll otherwise).
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  caUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (error: unknown) => error,
  );
}

describe('CA client, answer missing or cut', () => {
  // `said`: what the message must name (the idle timer), when it was the timer that gave up.
  it.each([
    ['no head within the timeout', 'silent', 'no progress'],
    ['connection closed mid-body', 'cut', ''],
    ['body stalls past the timeout', 'stall', 'no progress'],
  ])('fail/%s → CA_UNAVAILABLE unreachable', async (_name, path, said) => {
    const error = await failureOf(
      fetchBundle({ caUrl: `${caUrl}/${path}`, trustDomain: ca.trustDomain, bundlePem: ca.bundlePem, timeoutMs: 300 }),
    );
    expect(error).toBeInstanceOf(MeshauthError);
    expect((error as MeshauthError).code).toBe('MESHAUTH_ERR_CA_UNAVAILABLE');
    expect((error as MeshauthError).reason).toBe('unreachable');
    expect((error as MeshauthError).message).toContain(said);
  });

  it('fail/aborted mid-body → the caller’s own reason', async () => {
    const controller = new AbortController();
    const reason = new Error('agent closing');
    const call = fetchBundle({
      caUrl: `${caUrl}/stall`,
      trustDomain: ca.trustDomain,
      bundlePem: ca.bundlePem,
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(reason), 100);
    expect(await failureOf(call)).toBe(reason);
  });
});

/**
 * A door in front of the CA server, as the CA's own under a storm: it holds each connection `holdMs` before the TLS
 * server sees it (never, when undefined).
 */
async function startDoor(holdMs: number | undefined): Promise<{ url: string; close(): Promise<void> }> {
  const held = new Set<Socket>();
  const door: TcpServer = createTcpServer((socket) => {
    held.add(socket);
    socket.on('close', () => held.delete(socket));
    if (holdMs !== undefined) setTimeout(() => server.emit('connection', socket), holdMs);
  });
  await new Promise<void>((resolve) => door.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${(door.address() as AddressInfo).port}`,
    close: () =>
      new Promise((resolve) => {
        for (const socket of held) socket.destroy();
        door.close(() => resolve());
      }),
  };
}

describe('CA client, waiting for the handshake', () => {
  it('pass/a handshake held at the door longer than the idle timeout still completes', async () => {
    const door = await startDoor(750);
    try {
      const answer = await fetchBundle({
        caUrl: `${door.url}/whole`,
        trustDomain: ca.trustDomain,
        bundlePem: ca.bundlePem,
        timeoutMs: 250,
        handshakeTimeoutMs: 10_000,
      });
      expect(answer.bundlePem).toHaveLength(1);
    } finally {
      await door.close();
    }
  });

  it('fail/no handshake within its own limit → CA_UNAVAILABLE unreachable, naming the handshake', async () => {
    const door = await startDoor(undefined);
    try {
      const error = await failureOf(
        fetchBundle({
          caUrl: `${door.url}/whole`,
          trustDomain: ca.trustDomain,
          bundlePem: ca.bundlePem,
          timeoutMs: 60_000,
          handshakeTimeoutMs: 300,
        }),
      );
      expect(error).toBeInstanceOf(MeshauthError);
      expect((error as MeshauthError).code).toBe('MESHAUTH_ERR_CA_UNAVAILABLE');
      expect((error as MeshauthError).reason).toBe('unreachable');
      expect((error as MeshauthError).message).toContain('no TLS handshake');
    } finally {
      await door.close();
    }
  });
});

describe('CA client, TLS checks', () => {
  it('pass/the identity check gets the CA’s leaf alone: Node never builds its record of the whole chain', async () => {
    const asked: unknown[] = [];
    const own = TLSSocket.prototype.getPeerCertificate;
    TLSSocket.prototype.getPeerCertificate = function (this: TLSSocket, detailed?: boolean) {
      asked.push(detailed);
      return own.call(this, detailed as false);
    } as typeof own;
    try {
      const answer = await fetchBundle({
        caUrl: `${caUrl}/whole`,
        trustDomain: ca.trustDomain,
        bundlePem: ca.bundlePem,
      });
      expect(answer.bundlePem).toEqual([ca.bundlePem]);
    } finally {
      TLSSocket.prototype.getPeerCertificate = own;
    }
    expect(asked).toEqual([false]);
  });

  it('fail/NODE_TLS_REJECT_UNAUTHORIZED=0 in the environment still refuses a CA outside the bundle', async () => {
    const other = await TestCa.create();
    const before = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    const warn = process.emitWarning;
    process.emitWarning = () => {}; // Node warns once that the variable disables verification
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
    try {
      const error = await failureOf(
        fetchBundle({ caUrl: `${caUrl}/cut`, trustDomain: ca.trustDomain, bundlePem: other.bundlePem }),
      );
      expect(error).toBeInstanceOf(MeshauthError);
      expect((error as MeshauthError).code).toBe('MESHAUTH_ERR_CA_UNAVAILABLE');
      expect((error as MeshauthError).reason).toBe('tls');
    } finally {
      if (before === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
      else process.env.NODE_TLS_REJECT_UNAUTHORIZED = before;
      process.emitWarning = warn;
    }
  });
});

describe('CA client, TLS profile', () => {
  /** A CA-like server that offers only `groups` for the key exchange. */
  async function caOffering(groups: string): Promise<{ url: string; close(): Promise<void> }> {
    const serving = await ca.issue({ id: ca.idFor('/meshauth/ca'), ipAddresses: ['127.0.0.1'] });
    const only = createServer({ cert: serving.chainPem, key: serving.keyPem, ecdhCurve: groups }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bundle: [ca.bundlePem] }));
    });
    await new Promise<void>((resolve) => only.listen(0, '127.0.0.1', resolve));
    return {
      url: `https://127.0.0.1:${(only.address() as AddressInfo).port}`,
      close: () =>
        new Promise((resolve) => {
          only.closeAllConnections();
          only.close(() => resolve());
        }),
    };
  }

  // Node's default groups include P-521 (and, on Node 24, a post-quantum hybrid the CA never picks); the client
  // offers the mesh's X25519, P-256 and P-384 only, as the CA does.
  it.each([['X25519'], ['P-256'], ['P-384']])('ok/a CA offering only %s', async (groups) => {
    const only = await caOffering(groups);
    try {
      const answer = await fetchBundle({ caUrl: only.url, trustDomain: ca.trustDomain, bundlePem: ca.bundlePem });
      expect(answer.bundlePem).toHaveLength(1);
    } finally {
      await only.close();
    }
  });

  it('fail/a CA offering only P-521 → CA_UNAVAILABLE, no shared group', async () => {
    const only = await caOffering('P-521');
    try {
      const error = await failureOf(
        fetchBundle({ caUrl: only.url, trustDomain: ca.trustDomain, bundlePem: ca.bundlePem }),
      );
      expect(error).toBeInstanceOf(MeshauthError);
      expect((error as MeshauthError).code).toBe('MESHAUTH_ERR_CA_UNAVAILABLE');
    } finally {
      await only.close();
    }
  });
});
