// HTTP/2 streams the gateway itself refuses before any answer (RST_STREAM(REFUSED_STREAM): never processed, so the
// client may send the request again). They are marked, so that the public listener's rapid-reset rule
// (premature-resets.ts), which counts streams closed before their head, never counts a refusal of ours as the client's.
import { constants as h2constants, type ServerHttp2Stream } from 'node:http2';

const kRefusedByGateway = Symbol('meshauth.refusedByGateway');

type MarkedStream = ServerHttp2Stream & { [kRefusedByGateway]?: true };

export function refuseStream(stream: ServerHttp2Stream): void {
  (stream as MarkedStream)[kRefusedByGateway] = true;
  stream.close(h2constants.NGHTTP2_REFUSED_STREAM);
}

export function refusedByGateway(stream: ServerHttp2Stream): boolean {
  return (stream as MarkedStream)[kRefusedByGateway] === true;
}
