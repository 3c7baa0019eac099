// An HTTP/2 upload at the gateway whose body is shorter than its content-length (nghttp2 resets the stream with
// PROTOCOL_ERROR) while the edge still checks the API token (its issuer's key set is being fetched). Toward the peer
// such a reset is a 400 `body_incomplete` (counted once, one line) wherever it lands (e85f2e1); during the edge's
// own check it reached H2Exchange.start with the caller gone and was counted as a browser that left
// (client_aborted), the misreading 7ed8b2f removed from the sidecar's listeners. Found by review of both.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endUserToken, jwksText, type SigningKey, signingKey } from '../helpers/end-user-keys.js';
import { type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';
import { rawH2Client, sendShortBody } from '../helpers/raw-h2-client.js';
import { eventually } from '../helpers/wait.js';

const PROTOCOL_ERROR = 0x1;

describe('gateway: an HTTP/2 upload reset for a protocol breach while its API token is checked', () => {
  let mesh: GatewayMesh;
  let jwks: Server;
  let issuer: string;
  let key: SigningKey;
  /** Answers the held JWKS requests; until called, every JWKS request waits. */
  let release: () => void;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });

  beforeAll(async () => {
    key = await signingKey('api-held');
    const body = jwksText(key);
    jwks = createServer((_req, res) => {
      void held.then(() => res.writeHead(200, { 'content-type': 'application/json' }).end(body));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    issuer = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}`;
    mesh = await startGatewayMesh({
      gateway: (base) => ({
        ...base,
        apiIssuers: [{ issuer, audiences: ['shop-api'], algorithms: ['ES256'], jwksUri: `${issuer}/jwks` }],
      }),
    });
  }, 30_000);

  afterAll(async () => {
    release();
    await mesh?.close();
    await new Promise((resolve) => jwks?.close(resolve));
  });

  /** Counts at the gateway's side toward the mesh: 400 body_incomplete rejections, and client_aborted resets. */
  async function counts(): Promise<{ incomplete: number; aborted: number }> {
    const incomplete = (await mesh.metrics.requestsRejected.get()).values
      .filter((v) => v.labels.direction === 'outbound' && v.labels.code === 'MESHAUTH_ERR_BAD_REQUEST')
      .reduce((sum, v) => sum + v.value, 0);
    const aborted = (await mesh.metrics.streamsReset.get()).values
      .filter((v) => v.labels.direction === 'outbound' && v.labels.reason === 'client_aborted')
      .reduce((sum, v) => sum + v.value, 0);
    return { incomplete, aborted };
  }

  it('fail/reset while the key set is fetched → counted once as body_incomplete, not as a browser that left', async () => {
    const before = await counts();
    const lines = mesh.log.find({ reason: 'body_incomplete' }).length;
    const token = await endUserToken(key, issuer, 'shop-api');
    const port = Number(new URL(mesh.origin).port);
    const code = await sendShortBody(await rawH2Client(port, mesh.files.caPem), [
      [':method', 'POST'],
      [':scheme', 'https'],
      [':authority', `127.0.0.1:${port}`],
      [':path', '/in-stage'],
      ['authorization', `Bearer ${token}`],
      ['content-type', 'text/plain'],
    ]);
    expect(code).toBe(PROTOCOL_ERROR);
    release(); // the token check settles after the stream is gone
    expect(
      await eventually(async () => {
        const now = await counts();
        return now.incomplete > before.incomplete || now.aborted > before.aborted;
      }),
    ).toBe(true);
    expect(await counts()).toEqual({ incomplete: before.incomplete + 1, aborted: before.aborted });
    expect(mesh.log.find({ reason: 'body_incomplete' })).toHaveLength(lines + 1);
    expect(mesh.webApp.seen.map((s) => s.url)).not.toContain('/in-stage');
  });
});
