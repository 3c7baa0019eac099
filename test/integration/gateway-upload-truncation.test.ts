// A request body cut by the browser or API client at the gateway never reaches the service as complete: over
// HTTP/2, a stream reset mid-body — also RST_STREAM(NO_ERROR), which node:http2 reports as the end of the readable
// side — and over HTTP/1.1, a connection closed mid-body. The service's app records a request only once its body
// ended, so a cut body must leave no record there.
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';
import { rawH2Client } from '../helpers/raw-h2-client.js';
import { eventually, waitFor } from '../helpers/wait.js';

const NGHTTP2_NO_ERROR = 0;
const NGHTTP2_CANCEL = 8;

describe('gateway: cut uploads are never delivered as complete', () => {
  let mesh: GatewayMesh;
  let port: number;
  beforeAll(async () => {
    mesh = await startGatewayMesh({
      gateway: (base) => ({
        ...base,
        routes: (base.routes as Record<string, unknown>[]).map((route) => ({ ...route, login: 'none' })),
      }),
    });
    port = Number(new URL(mesh.origin).port);
  });
  afterAll(async () => {
    await mesh?.close();
  });

  const uploads = (path: string) => mesh.webApp.seen.filter((seen) => seen.url === path);
  /** The first body bytes ('amount=10') travelled the whole way to the service's app before the cut. */
  const firstBytesArrive = (path: string) =>
    waitFor(`the first bytes of ${path} at the app`, () =>
      mesh.webApp.arriving.some((a) => a.url === path && a.bodyBytes >= 'amount=10'.length),
    );

  it('ok/a whole HTTP/2 upload reaches the service with every byte', async () => {
    const client = await rawH2Client(port, mesh.files.caPem);
    try {
      client.headers(1, [
        [':method', 'POST'],
        [':scheme', 'https'],
        [':authority', `127.0.0.1:${port}`],
        [':path', '/upload-whole'],
        ['content-type', 'text/plain'],
      ]);
      client.data(1, 'amount=10');
      client.data(1, '&to=bob', true);
      expect(await eventually(() => uploads('/upload-whole').length === 1)).toBe(true);
      expect(uploads('/upload-whole')[0]?.bodyBytes).toBe(16);
    } finally {
      client.close();
    }
  });

  it.each([
    ['RST_STREAM(NO_ERROR)', NGHTTP2_NO_ERROR],
    ['RST_STREAM(CANCEL)', NGHTTP2_CANCEL],
  ])('fail/an HTTP/2 upload reset mid-body with %s never reaches the service as complete', async (name, code) => {
    const path = `/upload-cut-${code}`;
    const client = await rawH2Client(port, mesh.files.caPem);
    try {
      client.headers(1, [
        [':method', 'POST'],
        [':scheme', 'https'],
        [':authority', `127.0.0.1:${port}`],
        [':path', path],
        ['content-type', 'text/plain'],
      ]);
      client.data(1, 'amount=10');
      await firstBytesArrive(path);
      client.reset(1, code);
      // A stream after the reset on the same connection shows the gateway went on (and gives the cut body time).
      client.headers(
        3,
        [
          [':method', 'GET'],
          [':scheme', 'https'],
          [':authority', `127.0.0.1:${port}`],
          [':path', `${path}-after`],
        ],
        true,
      );
      expect(await eventually(() => uploads(`${path}-after`).length === 1)).toBe(true);
      // A fixed grace period for the negative (nothing to wait on): a body wrongly ended would reach the app as
      // fast as the reset does.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(uploads(path), name).toEqual([]);
    } finally {
      client.close();
    }
  });

  it.each([
    ['chunked', 'Transfer-Encoding: chunked\r\n\r\n9\r\namount=10\r\n'],
    ['content-length', 'Content-Length: 100\r\n\r\namount=10'],
  ])(
    'fail/an HTTP/1.1 %s upload cut by a closed connection never reaches the service as complete',
    async (name, rest) => {
      const path = `/upload-h1-cut-${name}`;
      const socket = tlsConnect({
        host: '127.0.0.1',
        port,
        ca: [mesh.files.caPem],
        ALPNProtocols: ['http/1.1'],
        servername: 'localhost',
      });
      socket.on('error', () => undefined);
      await new Promise((resolve) => socket.once('secureConnect', resolve));
      socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${rest}`);
      await firstBytesArrive(path);
      socket.destroy();
      // A request after the cut shows the gateway went on; then a fixed grace period for the negative, as above.
      expect(await answered(`${path}-after`)).toBe(true);
      expect(await eventually(() => uploads(`${path}-after`).length === 1)).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(uploads(path)).toEqual([]);
    },
  );

  /** Sends GET `path` over a new HTTP/2 connection; true once a response head came back. */
  async function answered(path: string): Promise<boolean> {
    const client = await rawH2Client(port, mesh.files.caPem);
    try {
      client.headers(
        1,
        [
          [':method', 'GET'],
          [':scheme', 'https'],
          [':authority', `127.0.0.1:${port}`],
          [':path', path],
        ],
        true,
      );
      return await eventually(() => client.received.some((f) => f.type === 0x1 && f.stream === 1));
    } finally {
      client.close();
    }
  }
});
