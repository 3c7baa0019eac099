// The gateway's path to an HTTP/1.1-only peer refuses what the sidecars' answer handler refuses, and handles an
// answer that comes before the browser's upload ended as the sidecars' listeners do (found by a hostile probe):
// - a status above 599 reached an HTTP/1.1 browser as it was (the HTTP/2 side refused it);
// - a transfer coding besides chunked (gzip) reached the browser as its raw bytes, with nothing saying so;
// - the names the peer's Connection header lists were forwarded;
// - an answer before the upload ended left the upload unread: the browser's upload stalled until a timeout closed
//   the connection. Now the answer says `connection: close`, the rest of the upload is read and dropped, then the
//   connection closes. An HTTP/2 browser's upload stream was left half-open until the session's idle timeout; it is
//   closed with RST_STREAM(NO_ERROR) once the answer is flushed.
import { connect as h2Connect, constants as h2constants } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayMesh, type GatewayWithHttp1Peer, startGatewayWithHttp1Peer } from '../helpers/gateway-mesh.js';
import { waitFor } from '../helpers/wait.js';

const RAW: Record<string, string> = {
  '/legacy/status-600': 'HTTP/1.1 600 Beyond\r\ncontent-length: 2\r\n\r\nno',
  '/legacy/gzip': 'HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n2\r\nzz\r\n0\r\n\r\n',
  '/legacy/listed':
    'HTTP/1.1 200 OK\r\nconnection: x-secret\r\nx-secret: 1\r\nx-kept: yes\r\ncontent-length: 2\r\n\r\nok',
};

describe('gateway → HTTP/1.1 peer, answers the sidecars refuse, and early answers', () => {
  let mesh: GatewayMesh;
  let started: GatewayWithHttp1Peer | undefined;
  beforeAll(async () => {
    started = await startGatewayWithHttp1Peer((req, res) => {
      const raw = RAW[req.url ?? ''];
      if (raw !== undefined) {
        req.socket.end(raw); // bytes node:http would not write
        return;
      }
      // /legacy/upload: answered at once, the body never read.
      res.statusCode = 413;
      res.end('too big');
    });
    ({ mesh } = started);
  });
  afterAll(async () => {
    await started?.close();
  });

  async function get(path: string) {
    const agent = new Agent({ connect: { ca: mesh.files.caPem } });
    try {
      const answer = await request(`${mesh.origin}${path}`, { dispatcher: agent, headersTimeout: 5_000 });
      return { status: answer.statusCode, headers: answer.headers, body: await answer.body.text() };
    } finally {
      await agent.close();
    }
  }

  it.each([['/legacy/status-600'], ['/legacy/gzip']])('fail/%s → 502 MESHAUTH_ERR_UPSTREAM_PROTOCOL', async (path) => {
    const answer = await get(path);
    expect(answer.status).toBe(502);
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'MESHAUTH_ERR_UPSTREAM_PROTOCOL' });
  });

  it('fail/a header the peer names in Connection does not reach the browser; the others do', async () => {
    const answer = await get('/legacy/listed');
    expect([answer.status, answer.body, answer.headers['x-kept']]).toEqual([200, 'ok', 'yes']);
    expect(answer.headers['x-secret']).toBeUndefined();
  });

  it('ok/an answer before the upload ended: connection: close, the rest of the upload read and dropped, then closed', async () => {
    const url = new URL(mesh.origin);
    const socket = tlsConnect({
      host: url.hostname,
      port: Number(url.port),
      ca: mesh.files.caPem,
      servername: 'localhost',
    });
    let received = '';
    let writeError: Error | undefined;
    let closed = false;
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
    });
    socket.on('error', (error) => {
      writeError = error;
    });
    socket.on('close', () => {
      closed = true;
    });
    await new Promise((resolve) => socket.once('secureConnect', resolve));
    const CHUNK = Buffer.alloc(64 * 1024, 'x');
    const CHUNKS = 64; // 4 MiB
    socket.write(
      `POST /legacy/upload HTTP/1.1\r\nHost: ${url.host}\r\nContent-Length: ${CHUNK.length * CHUNKS}\r\n\r\n`,
    );
    let flushed = 0;
    for (let i = 0; i < CHUNKS; i++) socket.write(CHUNK, () => flushed++);
    await waitFor('the answer', () => received.includes('too big'), 5_000);
    expect(received).toMatch(/^HTTP\/1\.1 413 /);
    expect(received.toLowerCase()).toContain('\r\nconnection: close\r\n');
    // Every byte of the upload taken (it stalled before until a timeout closed the connection), then the close.
    await waitFor('the upload to be taken', () => flushed === CHUNKS || writeError !== undefined, 5_000);
    expect(writeError).toBeUndefined();
    socket.end();
    await waitFor('the close', () => closed, 5_000);
  });

  it('ok/an HTTP/2 browser answered before its upload ended: its stream is closed with RST_STREAM(NO_ERROR)', async () => {
    const session = h2Connect(mesh.origin, { ca: mesh.files.caPem });
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/legacy/upload', 'content-length': '1048576' });
      stream.write(Buffer.alloc(16 * 1024, 'x')); // a sixteenth of what it announced; the rest never comes
      let status = 0;
      let body = '';
      let rstCode: number | undefined;
      stream.on('response', (headers) => {
        status = Number(headers[':status']);
      });
      stream.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      stream.on('error', () => undefined);
      stream.on('close', () => {
        rstCode = stream.rstCode;
      });
      await waitFor('the stream closed by the gateway', () => rstCode !== undefined, 5_000);
      expect([status, body, rstCode]).toEqual([413, 'too big', h2constants.NGHTTP2_NO_ERROR]);
    } finally {
      session.destroy();
    }
  });
});
