// An error answer a caller never takes. A client without a token that sets its HTTP/2 flow-control window to 0 never
// lets the 401's body out, and node:http2's stream timer is put off by every PING answer the session writes: its
// stream, and the connection, used to stay open for ever (found in review: unauthenticated clients could fill the
// external listener's places that way). A whole error answer not taken within ERROR_ANSWER_DEADLINE_MS is reset.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ExternalSidecar, startExternalSidecar } from '../helpers/external-sidecar.js';
import { rstCodeOf, untakenAnswerReset } from '../helpers/raw-h2-client.js';

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
    const port = external.sc.sidecar.externalPort as number;
    const reset = await untakenAnswerReset(port, external.ca.rootPem, 'api.example', '/orders');
    expect(rstCodeOf(reset)).toBe(NGHTTP2_INTERNAL_ERROR);
  });
});
