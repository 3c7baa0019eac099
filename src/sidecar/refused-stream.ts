// An HTTP/2 stream refused before any answer: RST_STREAM(REFUSED_STREAM) says nothing was processed, so the client
// may send the request again (a peer sidecar's outbound does, once). Marked as the sidecar's own reset
// (kResetBySidecar), so that the rapid-reset rule (premature-resets.ts) never counts it as the client's.
import { constants as h2constants, type ServerHttp2Stream } from 'node:http2';
import { kResetBySidecar } from './forward-handler.js';

export function refuseStream(stream: ServerHttp2Stream): void {
  (stream as ServerHttp2Stream & { [kResetBySidecar]?: boolean })[kResetBySidecar] = true;
  stream.close(h2constants.NGHTTP2_REFUSED_STREAM);
}
