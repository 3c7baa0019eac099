// An answer of the gateway's own that a client never takes. A client that sets its HTTP/2 flow-control window to 0
// never lets the body of a 404 out, and node:http2's timers are put off by every PING answer the session writes: the
// connection used to stay open for ever, no credentials needed (found in review: four addresses could take every
// place of the public listener that way). Such an answer is reset after ERROR_ANSWER_DEADLINE_MS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';
import { h2Frame, rawH2Client, rstCodeOf } from '../helpers/raw-h2-client.js';
import { waitFor } from '../helpers/wait.js';

const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PING = 0x6;
const INITIAL_WINDOW_SIZE = 0x4;
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
    const client = await rawH2Client(Number(url.port), mesh.files.caPem);
    const zeroWindow = Buffer.alloc(6);
    zeroWindow.writeUInt16BE(INITIAL_WINDOW_SIZE, 0);
    client.socket.write(h2Frame(SETTINGS, 0, 0, zeroWindow));
    client.headers(
      1,
      [
        [':method', 'GET'],
        [':scheme', 'https'],
        [':authority', url.host],
        [':path', '/nowhere'],
      ],
      true,
    );
    const pings = setInterval(() => client.socket.write(h2Frame(PING, 0, 0, Buffer.alloc(8))), 1_000);
    try {
      await waitFor('the answer head', () => client.received.find((f) => f.type === HEADERS && f.stream === 1));
      const reset = await waitFor(
        'the untaken answer reset',
        () => client.received.find((f) => f.type === RST_STREAM && f.stream === 1),
        25_000,
      );
      expect(rstCodeOf(reset)).toBe(NGHTTP2_INTERNAL_ERROR);
    } finally {
      clearInterval(pings);
      client.close();
    }
  });
});
