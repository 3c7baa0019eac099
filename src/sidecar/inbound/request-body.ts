// The request body of an h2 server stream, handed on to the app client (the inbound, http1-client.ts) or to the
// outbound exchange (the edge gateway). An Http2Stream is the response too (the app client destroys a body it no
// longer wants), so the body is
// piped through a PassThrough with backpressure. The PassThrough only ends when the stream ended with END_STREAM: a
// stream reset or a session lost mid-body destroys it with an error, so the request upstream is aborted instead of
// ended (no terminating `0\r\n\r\n`, no END_STREAM).
import { constants, type ServerHttp2Stream } from 'node:http2';
import { PassThrough } from 'node:stream';

const kBody = Symbol('meshauth.requestBody');
type Source = ServerHttp2Stream & { [kBody]?: PassThrough };

/** `complete` as on node:http's IncomingMessage: true once the whole body arrived, never for a cut one. */
export class H2RequestBody extends PassThrough {
  get complete(): boolean {
    return this.readableEnded;
  }
}

export function h2RequestBody(stream: ServerHttp2Stream): H2RequestBody {
  const body = new H2RequestBody();
  // The app client listens for the body's errors only while it writes the request; a body destroyed while the
  // request still waits for an app connection (or after the client is done with it) must not become an uncaught
  // exception.
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

/**
 * Destroys the body of a request answered before it ended (closeAfterEarlyResponse): closing that stream
 * with NO_ERROR after the answer would otherwise end the pipe, and a cut body would pass on as a complete one.
 */
function cutRequestBody(stream: ServerHttp2Stream): void {
  (stream as Source)[kBody]?.destroy(new Error('request body cut by the sidecar'));
}

/**
 * The response ended (END_STREAM queued) before the request body was taken: the app or the sidecar answered without
 * waiting for the rest. The body pipe is cut at once (what reaches the app after the answer must not read as a
 * complete body), and once the answer is flushed the stream is closed with RST_STREAM(NO_ERROR) if the peer is still
 * sending, asking it to stop (a server may answer before the request is complete), instead of staying half-open,
 * holding its concurrency slot, until the stream idle timeout resets it (INTERNAL_ERROR, which a client reads as a
 * failed request). Then whatever body the stream still buffers is dropped: cutting the pipe pauses the stream, and a
 * paused stream with data left never ends, so node:http2 never destroys it (no 'close': the session's count of streams
 * in flight never falls, and the buffered body stays for the session's life).
 *
 * The close waits for 'finish' rather than being asked for now: node:http2 marks a stream closed as soon as close() is
 * called and never resets a closed stream on destroy(), so an answer the peer never takes (its flow-control window
 * shut) could no longer be reset by its deadline (resetIfNotTaken, H2Sink.idle).
 */
export function closeAfterEarlyResponse(stream: ServerHttp2Stream): void {
  if (stream.destroyed || stream.readableEnded) return;
  // The peer ended its body and all of it was taken: nothing to stop, nothing to drop.
  if (stream.state.remoteClose !== 0 && stream.readableLength === 0) return;
  stream.unpipe();
  cutRequestBody(stream);
  if (stream.writableFinished) closeAndDrop(stream);
  else stream.once('finish', onAnswerFlushed);
}

function onAnswerFlushed(this: ServerHttp2Stream): void {
  closeAndDrop(this);
}

function closeAndDrop(stream: ServerHttp2Stream): void {
  if (stream.destroyed) return;
  if (!stream.closed && stream.state.remoteClose === 0) stream.close(constants.NGHTTP2_NO_ERROR);
  stream.resume();
}

function ignore(): void {}
