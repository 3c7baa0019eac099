// The request body handed to undici for an h2 stream. An Http2Stream is the response too (undici destroys a body
// stream once it has sent it), so the body is piped through a PassThrough with backpressure. The PassThrough only
// ends when the stream ended with END_STREAM: a stream reset or a session lost mid-body destroys it with an error,
// so undici aborts the request and destroys the app connection instead of writing the terminating `0\r\n\r\n`.
import type { ServerHttp2Stream } from 'node:http2';
import { PassThrough, type Readable } from 'node:stream';

const kBody = Symbol('meshauth.requestBody');
type Source = ServerHttp2Stream & { [kBody]?: PassThrough };

export function h2RequestBody(stream: ServerHttp2Stream): Readable {
  const body = new PassThrough();
  // undici listens for the body's errors only while it writes the request; a body destroyed while the request
  // still waits for an app connection (or after undici is done with it) must not become an uncaught exception.
  body.on('error', ignore);
  (stream as Source)[kBody] = body;
  // 'aborted' is emitted synchronously when the stream closes while its response is still open, before the
  // readable side is ended, so the PassThrough is destroyed before pipe() could end it.
  stream.once('aborted', onAborted);
  return stream.pipe(body);
}

function onAborted(this: Source): void {
  this[kBody]?.destroy(new Error('request stream reset before END_STREAM'));
}

function ignore(): void {}
