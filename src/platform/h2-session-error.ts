// The bounded reason for an HTTP/2 session that node:http2 tore down with an error (a protocol breach, or a flood
// nghttp2 detects: CONTINUATION, PING, SETTINGS), shared by every listener that counts it in
// meshauth_connections_rejected_total, so the gateway and the sidecar listeners report one set of labels.
// It only names the error; counting and logging stay with each listener's telemetry. A client that merely went away
// (clientWentAway) is no such error.

export type H2SessionErrorReason = 'h2_invalid_frames' | 'h2_session_error' | 'h2_protocol_error' | 'h2_error';

/** A bounded label for a node:http2 session 'error' (its message and code never become labels themselves). */
export function h2SessionErrorReason(error: Error & { code?: string }): H2SessionErrorReason {
  switch (error.code) {
    case 'ERR_HTTP2_TOO_MANY_INVALID_FRAMES':
      return 'h2_invalid_frames';
    case 'ERR_HTTP2_SESSION_ERROR':
      return 'h2_session_error';
    // nghttp2's flood and header-block limits (PING/SETTINGS ACKs piling up, endless CONTINUATION) end up here.
    case 'ERR_HTTP2_ERROR':
      return 'h2_protocol_error';
    default:
      return 'h2_error';
  }
}

/**
 * Transport errors that mean only that the client closed or reset its connection. node:http2's server passes its
 * socket's errors to the session as a session 'error' (a session made by performServerHandshake, as the sidecar's
 * listeners make theirs, gets none): a client that resets once its responses are in (curl often does, before reading
 * the server's last frames) is then no protocol breach or flood and no rejected connection.
 */
const CLIENT_GONE_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/** True when a session 'error' says only that the client went away (not counted as a rejected connection). */
export function clientWentAway(error: Error & { code?: string }): boolean {
  return error.code !== undefined && CLIENT_GONE_CODES.has(error.code);
}
