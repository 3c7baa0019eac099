// The inbound's (mTLS) h2 sink: an H2Sink that refuses a request the app never saw with RST_STREAM(REFUSED_STREAM)
// instead of an error answer. The code tells the caller the request was not processed at all, so a peer sidecar's
// outbound retries it once on another session or endpoint (h2-exchange.ts), which a 503 body would not allow. The
// external listener keeps the plain H2Sink: its clients are not sidecars, and a JSON 503 tells them more.
import type { ServerHttp2Stream } from 'node:http2';
import type { MeshauthError } from '../../errors/index.js';
import { H2Sink } from '../pipeline/sinks.js';
import { refuseStream } from '../refused-stream.js';

export class PeerH2Sink extends H2Sink {
  readonly #stream: ServerHttp2Stream;

  constructor(...args: ConstructorParameters<typeof H2Sink>) {
    super(...args);
    this.#stream = args[0];
  }

  override reject(
    error: MeshauthError,
    extraHeaders: Readonly<Record<string, string>> | undefined,
    extraBody: Readonly<Record<string, string>> | undefined,
  ): void {
    const stream = this.#stream;
    if (error.code !== 'MESHAUTH_ERR_UPSTREAM_BUSY' || stream.headersSent || stream.destroyed) {
      super.reject(error, extraHeaders, extraBody);
      return;
    }
    refuseStream(stream);
  }
}
