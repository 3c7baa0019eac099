// An error answer a caller never takes. A client without a token that sets its HTTP/2 flow-control window to 0 never
// lets the 401's body out, and node:http2's stream timer is put off by every PING answer the session writes: its
// stream, and the connection, used to stay open for ever (found in review: unauthenticated clients could fill the
// external listener's places that way). A whole error answer not taken within ERROR_ANSWER_DEADLINE_MS is reset.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ExternalSidecar, startExternalSidecar } from '../helpers/external-sidecar.js';
import { h2Frame, rawH2Client, rstCodeOf } from '../helpers/raw-h2-client.js';
import { waitFor } from '../helpers/wait.js';

const SETTINGS = 0x4;
const PING = 0x6;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const INITIAL_WINDOW_SIZE = 0x4;
const NGHTTP2_INTERNAL_ERROR = 0x2;

describe('external listener: an error answer the caller never takes', () => {
  let external: ExternalSidecar;
  beforeAll(async () => {
    external = await startExternalSidecar();
  });
  afterAll(async () => {
    await external?.close();
  });

  it('fail/a 401 behind a closed window is reset, though the caller keeps the session busy with PINGs', async () => {
    const client = await rawH2Client(external.sc.sidecar.externalPort as number, external.ca.rootPem);
    const zeroWindow = Buffer.alloc(6);
    zeroWindow.writeUInt16BE(INITIAL_WINDOW_SIZE, 0);
    client.socket.write(h2Frame(SETTINGS, 0, 0, zeroWindow));
    client.headers(
      1,
      [
        [':method', 'GET'],
        [':scheme', 'https'],
        [':authority', 'api.example'],
        [':path', '/orders'],
      ],
      true,
    );
    const pings = setInterval(() => client.socket.write(h2Frame(PING, 0, 0, Buffer.alloc(8))), 1_000);
    try {
      // The answer's head goes out (headers are not flow-controlled); its body waits for a window that never opens.
      await waitFor('the 401 head', () => client.received.find((f) => f.type === HEADERS && f.stream === 1));
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
