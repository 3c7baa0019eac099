// An answer of the gateway's own that a client never takes. A client that sets its HTTP/2 flow-control window to 0
// never lets the body of a 404 out, and node:http2's timers are put off by every PING answer the session writes: the
// connection used to stay open for ever, no credentials needed (found in review: four addresses could take every
// place of the public listener that way). Such an answer is reset after ERROR_ANSWER_DEADLINE_MS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';
import { rstCodeOf, untakenAnswerReset } from '../helpers/raw-h2-client.js';

const NGHTTP2_INTERNAL_ERROR = 0x2;

describe('gateway: an answer of its own the client never takes', () => {
  let mesh: GatewayMesh;
  beforeAll(async () => {
    mesh = await startGatewayMesh();
  });
  afterAll(async () => {
    await mesh?.close();
  });

  it('fail/a 404 behind a closed window is reset, though the client keeps the session busy with PINGs', async () => {
    const url = new URL(mesh.origin);
    const reset = await untakenAnswerReset(Number(url.port), mesh.files.caPem, url.host, '/nowhere');
    expect(rstCodeOf(reset)).toBe(NGHTTP2_INTERNAL_ERROR);
  });
});
