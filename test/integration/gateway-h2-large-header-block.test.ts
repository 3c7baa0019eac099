// HTTP/2 header blocks far past limits.maxHeaderBytes at the gateway. A 70 KB block was thought to be reset by Node's
// HTTP/2 layer before the edge saw it (REFUSED_STREAM at the client, nothing counted). That reset is the client's own:
// node:http2's and curl's nghttp2 refuse to send a block past their 64 KiB maxSendHeaderBlockLength, and the
// gateway reads nothing but the connection preface. A client that does send it gets the 431 of a 17–40 KB block,
// counted and logged. A block past what nghttp2 takes in CONTINUATION frames ends the session: counted as a
// connection closed for h2_protocol_error, with a log line.
import { connect } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';
import { eventually } from '../helpers/wait.js';

/** A client that sends header blocks of any size (node:http2 stops at 64 KiB by default). */
const UNBOUNDED_CLIENT = { maxSendHeaderBlockLength: 16 * 1024 * 1024 };

type Outcome = { status: number; body: string } | { error: string };

/** One request with `fields` header fields of `bytes` characters in all; its answer or its error code. */
async function send(mesh: GatewayMesh, bytes: number, fields: number): Promise<Outcome> {
  const session = connect(mesh.origin, { ca: mesh.ca.rootPem, ...UNBOUNDED_CLIENT });
  session.on('error', () => undefined);
  try {
    const headers: Record<string, string> = { ':path': '/shop', accept: 'application/json' };
    for (let i = 0; i < fields; i++) headers[`x-big-${i}`] = 'a'.repeat(Math.floor(bytes / fields));
    return await new Promise<Outcome>((resolve) => {
      const stream = session.request(headers);
      let body = '';
      let status = 0;
      stream.on('response', (h) => {
        status = Number(h[':status']);
      });
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        body += chunk;
      });
      stream.on('end', () => resolve({ status, body }));
      stream.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? 'error' }));
      stream.end();
    });
  } finally {
    session.destroy();
  }
}

async function counted(mesh: GatewayMesh) {
  const decisions = (await mesh.metrics.gatewayDecisions.get()).values;
  const closed = (await mesh.metrics.connectionsRejected.get()).values;
  return {
    tooLarge:
      decisions.find(
        (v) => v.labels.route === '' && v.labels.decision === 'deny' && v.labels.rule === 'header_list_size',
      )?.value ?? 0,
    protocolError:
      closed.find((v) => v.labels.direction === 'edge' && v.labels.reason === 'h2_protocol_error')?.value ?? 0,
  };
}

describe('gateway: HTTP/2 header blocks far past limits.maxHeaderBytes', () => {
  let mesh: GatewayMesh;
  beforeAll(async () => {
    mesh = await startGatewayMesh();
  });
  afterAll(async () => {
    await mesh?.close();
  });

  it.each([
    ['fail/70 KB in one field', 70_000, 1],
    ['fail/70 KB in four fields', 70_000, 4],
    ['fail/130 KB in eight fields', 130_000, 8],
  ] as const)('%s → 431 MESHAUTH_ERR_HEADERS_TOO_LARGE, one count, one log line', async (_name, bytes, fields) => {
    const before = await counted(mesh);
    const seen = mesh.log.lines.length;
    const outcome = await send(mesh, bytes, fields);
    expect(outcome).toMatchObject({ status: 431 });
    expect(JSON.parse((outcome as { body: string }).body).code).toBe('MESHAUTH_ERR_HEADERS_TOO_LARGE');
    expect(await counted(mesh)).toEqual({ ...before, tooLarge: before.tooLarge + 1 });
    const denies = mesh.log.lines.slice(seen).filter((line) => line.event === 'gateway_deny');
    expect(denies).toMatchObject([{ route: '', rule: 'header_list_size', code: 'MESHAUTH_ERR_HEADERS_TOO_LARGE' }]);
  });

  it('fail/1 MB in twenty fields → the session is closed, counted as h2_protocol_error with one log line', async () => {
    const before = await counted(mesh);
    const seen = mesh.log.lines.length;
    expect(await send(mesh, 1_000_000, 20)).toEqual({ error: 'ERR_HTTP2_SESSION_ERROR' });
    expect(await eventually(async () => (await counted(mesh)).protocolError > before.protocolError)).toBe(true);
    expect(await counted(mesh)).toEqual({ ...before, protocolError: before.protocolError + 1 });
    const closed = mesh.log.lines
      .slice(seen)
      .filter((line) => line.event === 'gateway_connection_closed' && line.reason === 'h2_protocol_error');
    expect(closed).toHaveLength(1);
  });
});
