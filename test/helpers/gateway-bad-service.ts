// For gateway tests: the gateway mesh (gateway-mesh.ts) plus a "bad" service (app + sidecar) on route /bad whose app misbehaves by path:
// /bad/cl-cut and /bad/chunk-cut cut the response mid-body, /bad/stall-body never finishes it, /bad/stall-head never answers,
// /bad/cookie?c=<set-cookie lines> sets cookies, anything else echoes what the app received.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { freePort } from './free-port.js';
import { type GatewayMesh, startGatewayMesh } from './gateway-mesh.js';
import { startApp, startTestSidecar, type TestApp, type TestSidecar } from './sidecar-harness.js';

export interface BadMesh {
  readonly mesh: GatewayMesh;
  readonly port: number;
  readonly badApp: TestApp;
  readonly bad: TestSidecar;
  readonly open: Set<ServerResponse>;
  close(): Promise<void>;
}

export function badHandler(open: Set<ServerResponse>) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '';
    const sock = res.socket;
    if (url.startsWith('/bad/cl-cut')) {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 1000 });
      res.write('x'.repeat(100));
      setTimeout(() => sock?.destroy(), 200);
    } else if (url.startsWith('/bad/chunk-cut')) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('x'.repeat(100));
      setTimeout(() => sock?.destroy(), 200);
    } else if (url.startsWith('/bad/stall-body')) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('x'.repeat(100));
      open.add(res);
    } else if (url.startsWith('/bad/stall-head')) {
      open.add(res);
    } else if (url.startsWith('/bad/cookie')) {
      res.writeHead(200, {
        'content-type': 'text/plain',
        'content-length': 2,
        'set-cookie': decodeURIComponent(new URL(url, 'http://x').searchParams.get('c') ?? '').split('\n'),
      });
      res.end('ok');
    } else {
      const body = JSON.stringify({ url, headers: req.headers, rawHeaders: req.rawHeaders, method: req.method });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    }
  };
}

export async function startBadMesh(
  extra: (base: Record<string, unknown>) => Record<string, unknown> = (b) => b,
): Promise<BadMesh> {
  // The gateway's route names the bad sidecar's port before that sidecar exists, so the port is picked free and bound
  // later: another process of the machine may take it in between. A new port, a few times, rather than a failed file.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startBadMeshOnce(extra, await freePort());
    } catch (error) {
      const code = (error as { cause?: { code?: string } }).cause?.code;
      if (code !== 'EADDRINUSE' || attempt === 3) throw error;
    }
  }
}

async function startBadMeshOnce(
  extra: (base: Record<string, unknown>) => Record<string, unknown>,
  badPort: number,
): Promise<BadMesh> {
  const badId = 'spiffe://example.org/ns/shop/sa/bad';
  const mesh = await startGatewayMesh({
    gateway: (base) =>
      extra({
        ...base,
        limits: { upstreamTimeout: '2s' },
        routes: [
          ...(base.routes as Record<string, unknown>[]).map((route) => ({ ...route, login: 'none' })),
          {
            name: 'bad',
            match: { host: '127.0.0.1', pathPrefix: '/bad' },
            to: { address: `127.0.0.1:${badPort}`, ids: [badId] },
            login: 'none',
          },
        ],
      }),
  });
  const open = new Set<ServerResponse>();
  const badApp = await startApp(badHandler(open));
  let bad: TestSidecar;
  try {
    bad = await startTestSidecar(
      mesh.ca,
      badId,
      sidecarConfigFromObject(
        {
          trustDomain: 'example.org',
          ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent/bundle.pem', token: '/nonexistent/token' },
          inbound: { listen: `127.0.0.1:${badPort}`, app: `127.0.0.1:${badApp.port}`, appTimeout: '5s' },
          outbound: { listen: '127.0.0.1:0', routes: {} },
          admin: { listen: '127.0.0.1:0' },
          drainTimeout: '1s',
        },
        'bad',
      ),
    );
  } catch (error) {
    await badApp.close().catch(() => undefined);
    await mesh.close();
    throw error;
  }
  return {
    mesh,
    port: Number(new URL(mesh.origin).port),
    badApp,
    bad,
    open,
    close: async () => {
      for (const r of open) r.socket?.destroy();
      await bad.sidecar.close(0).catch(() => undefined);
      await badApp.close().catch(() => undefined);
      await mesh.close();
    },
  };
}

/**
 * A TLS connection (HTTP/1.1 by ALPN) to the gateway's public listener on 127.0.0.1:`port`, still connecting; from
 * `localAddress` when given (another 127.0.0.x is another client address to the gateway).
 */
export function gatewayH1Socket(port: number, caPem: string, localAddress?: string): TLSSocket {
  return tlsConnect({
    host: '127.0.0.1',
    port,
    ca: [caPem],
    ALPNProtocols: ['http/1.1'],
    servername: 'localhost',
    // tls.connect hands its options to net.connect, which binds localAddress; @types/node leaves it out of the type.
    ...(localAddress === undefined ? {} : ({ localAddress } as object)),
  });
}

/** Raw HTTP/1.1 over TLS: writes `request`, collects bytes until the socket closes or `ms` pass. */
export async function h1Exchange(
  port: number,
  caPem: string,
  request: string,
  ms = 4_000,
): Promise<{ text: string; closed: boolean; error: string | undefined }> {
  const socket = gatewayH1Socket(port, caPem);
  let text = '';
  let error: string | undefined;
  socket.on('data', (c: Buffer) => {
    text += c.toString('latin1');
  });
  socket.on('error', (e) => {
    error = e.message;
  });
  await new Promise((resolve) => socket.once('secureConnect', resolve));
  socket.write(request);
  const closed = await new Promise<boolean>((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    socket.once('close', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
  socket.destroy();
  return { text, closed, error };
}
