// One factory per error a pipeline stage raises: the code, the log message and the bounded reason are
// decided here once, so every listener answers the same condition the same way.
import { type ErrorCode, isMeshauthError, MeshauthError } from '../../errors/index.js';
import type { AuthzVerdict } from '../inbound/inbound-hooks.js';

export function methodInvalid(): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_METHOD_INVALID', 'malformed request', { reason: 'method' });
}

/** An authentication hook threw something that is not a MeshauthError. */
export function tokenInvalid(message: string, cause: unknown): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_TOKEN_INVALID', message, { cause });
}

/** An authenticator that lets a request through without a verified client (fail closed). */
export function noVerifiedClient(): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_TOKEN_MISSING', 'no verified client');
}

/** The policy's deny (its code defaults to MESHAUTH_ERR_FORBIDDEN). */
export function deniedByPolicy(verdict: AuthzVerdict, method: string, target: string): MeshauthError {
  return new MeshauthError(verdict.code ?? 'MESHAUTH_ERR_FORBIDDEN', `denied by policy (${verdict.reason})`, {
    reason: verdict.reason,
    detail: { rule: verdict.rule, method, target: target.slice(0, 256) },
  });
}

/** An authorize hook that threw: a deny with the error's code. */
export function authorizeError(error: unknown): AuthzVerdict {
  const code: ErrorCode = isMeshauthError(error) ? error.code : 'MESHAUTH_ERR_FORBIDDEN';
  return { allow: false, reason: 'authorize_error', code };
}

/** The peer's SVID expired while its connection stayed open: the connection no longer speaks for that identity. */
export function peerSvidExpired(): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_SVID_EXPIRED', 'peer certificate expired since the handshake', {
    reason: 'peer_svid_expired',
  });
}

/**
 * The caller's request body stopped arriving before any response head (a slow upload, RUDY): the caller's request
 * timed out, not the app or a peer. Both sidecar directions answer it so.
 */
export function requestBodyStalled(): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_REQUEST_TIMEOUT', 'request body stalled', { reason: 'body_stalled' });
}

/** Requests one HTTP/1.1 connection may have in flight at once (asked and not yet answered). */
export const MAX_PIPELINED_REQUESTS = 16;

/**
 * A request pipelined behind MAX_PIPELINED_REQUESTS others still unanswered on its HTTP/1.1 connection: answered at
 * once, with the connection closed after it, never started. Node parses every request a connection sends while its
 * answers are still due, so one connection could otherwise queue requests without end.
 */
export function tooManyPipelined(): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_RATE_LIMITED', 'too many pipelined requests', { reason: 'pipelined' });
}

/** 504: a peer sent its response head and then no body within the timeout, while the head was held for that body. */
export function headThenNoBody(cause?: unknown): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_UPSTREAM_TIMEOUT', 'peer sent a response head, then no body in time', {
    reason: 'timeout',
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * 502: a peer's response ended after its head, which was held for the first body byte, before any body: `why` in
 * words; `protocol_error` when its body broke the protocol and this hop ended it, else `response_cut`.
 */
export function cutAfterHead(
  why: string,
  reason: 'response_cut' | 'protocol_error',
  options: { readonly detail?: Readonly<Record<string, unknown>>; readonly cause?: unknown } = {},
): MeshauthError {
  return new MeshauthError(
    'MESHAUTH_ERR_UPSTREAM_PROTOCOL',
    `peer response cut after its head, before any body: ${why}`,
    {
      reason,
      ...options,
    },
  );
}

/** 502: a peer's response head cannot be written to the caller (a status past 599, a field Node refuses). */
export function unusableResponseHead(
  options: { readonly detail?: Readonly<Record<string, unknown>>; readonly cause?: unknown } = {},
): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_UPSTREAM_PROTOCOL', 'peer sent an unusable response head', {
    reason: 'response_head',
    ...options,
  });
}
