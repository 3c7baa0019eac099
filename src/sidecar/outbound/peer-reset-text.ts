// Why a peer never answered a request, or why its answer was cut, in words for the log line: HTTP/2's stream error
// codes by name and meaning (a bare "code 8" told an operator nothing), the connection lost under a request, and the
// protocol errors for which this sidecar itself reset a stream or closed a session. Pure.

/** HTTP/2's error codes, indexed by their value: name and what a reset with it says about the peer. */
const H2_CODES: readonly (readonly [name: string, meaning: string])[] = [
  ['NO_ERROR', 'the peer ended the stream without an answer'],
  ['PROTOCOL_ERROR', 'the peer says this sidecar broke the HTTP/2 protocol'],
  ['INTERNAL_ERROR', 'the peer failed while handling the request'],
  ['FLOW_CONTROL_ERROR', 'the peer says this sidecar broke HTTP/2 flow control'],
  ['SETTINGS_TIMEOUT', 'the peer got no acknowledgement of its settings in time'],
  ['STREAM_CLOSED', 'the peer got a frame for a stream it had closed'],
  ['FRAME_SIZE_ERROR', 'the peer got a frame of a size it does not accept'],
  ['REFUSED_STREAM', 'the peer refused the stream before processing it'],
  ['CANCEL', 'the peer gave up the request, e.g. its sidecar was closing'],
  ['COMPRESSION_ERROR', 'the peer could not decode the request headers'],
  ['CONNECT_ERROR', 'the peer could not open the tunnel asked for'],
  ['ENHANCE_YOUR_CALM', 'the peer is limiting this sidecar’s load'],
  ['INADEQUATE_SECURITY', 'the peer does not accept the TLS parameters'],
  ['HTTP_1_1_REQUIRED', 'the peer wants this request over HTTP/1.1'],
];

/** `HTTP/2 code 8, CANCEL: the peer gave up …` for a stream's reset code. */
export function h2CodeText(code: number | undefined): string {
  if (code === undefined) return 'no HTTP/2 error code';
  const known = H2_CODES[code];
  return known === undefined
    ? `HTTP/2 code ${code}, not a code HTTP/2 defines`
    : `HTTP/2 code ${code}, ${known[0]}: ${known[1]}`;
}

/** A RST_STREAM from the peer, its connection still up. */
export function peerResetText(code: number | undefined): string {
  return `the peer reset the stream (${h2CodeText(code)})`;
}

/**
 * The connection to the peer went away under the request. The stream's own code then is node:http2's local
 * teardown (CANCEL), not the peer's word, so it is left out: naming it read as if the peer had reset the stream.
 */
export const CONNECTION_LOST =
  'the connection to the peer closed before its answer: the peer sidecar exited or restarted, or the network cut ' +
  'the connection, while the request was in flight';

/**
 * True when node:http2 failed a stream with the error of a session this sidecar's nghttp2 ended for what the peer
 * sent: frames that break HTTP/2 (a first frame other than SETTINGS, a PUSH_PROMISE with push disabled) or a flood
 * (PINGs or SETTINGS whose acknowledgements are never read, empty DATA frames). A peer that only closed its connection
 * fails the stream with no error, and a peer's GOAWAY with an error code is ERR_HTTP2_SESSION_ERROR: neither is this.
 */
export function closedForProtocolError(error: { readonly code?: unknown } | undefined): boolean {
  const code = error?.code;
  return code === 'ERR_HTTP2_ERROR' || code === 'ERR_HTTP2_TOO_MANY_INVALID_FRAMES';
}

/** A session this sidecar closed for the peer's protocol breach or flood (closedForProtocolError), in node:http2's words. */
export function sessionProtocolErrorText(error: Error & { readonly code?: unknown }): string {
  return (
    'this sidecar closed the HTTP/2 connection to the peer, which broke the protocol or flooded it ' +
    `(${String(error.code)}: ${error.message})`
  );
}

/**
 * A stream reset with PROTOCOL_ERROR once the peer's response head had arrived. node:http2 gives nghttp2's own reset
 * and a peer's RST_STREAM with that code alike (the code, nothing else), so the words name the usual case, nghttp2
 * refusing the rest of the response, and the other.
 */
export const RESPONSE_PROTOCOL_RESET =
  'this sidecar reset the stream for an HTTP/2 protocol error (PROTOCOL_ERROR): the peer’s response broke HTTP/2, ' +
  'e.g. a body longer or shorter than its content-length (or the peer reset it with that code)';
