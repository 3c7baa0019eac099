import { describe, expect, it } from 'vitest';
import { clientWentAway, h2SessionErrorReason } from '../../../src/platform/index.js';

const error = (code: string) => Object.assign(new Error(code), { code });

describe('HTTP/2 session errors', () => {
  it.each([
    ['ok/a reset connection', 'ECONNRESET'],
    ['ok/a write to a closed connection', 'EPIPE'],
    ['ok/an aborted connection', 'ECONNABORTED'],
  ])('%s (%s) → the client went away, not a rejection', (_name, code) => {
    expect(clientWentAway(error(code))).toBe(true);
  });

  it.each([
    ['fail/too many invalid frames', 'ERR_HTTP2_TOO_MANY_INVALID_FRAMES', 'h2_invalid_frames'],
    ['fail/a session error', 'ERR_HTTP2_SESSION_ERROR', 'h2_session_error'],
    ['fail/an nghttp2 flood or breach', 'ERR_HTTP2_ERROR', 'h2_protocol_error'],
    ['fail/another HTTP/2 error', 'ERR_HTTP2_STREAM_ERROR', 'h2_error'],
  ])('%s (%s) → counted as %s', (_name, code, reason) => {
    expect(clientWentAway(error(code))).toBe(false);
    expect(h2SessionErrorReason(error(code))).toBe(reason);
  });
});
