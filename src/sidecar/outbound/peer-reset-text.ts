// Why a peer never answered a request, in words for the log line: HTTP/2's stream error codes by name and meaning
// (a bare "code 8" told an operator nothing), and the connection lost under a request. Pure.

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
