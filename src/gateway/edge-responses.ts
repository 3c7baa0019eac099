// The gateway's own answers: JSON `{code, message}` errors (the registry's fixed sentence), redirects, and a small
// HTML page for a failed sign-in. They work on node:http responses and on node:http2 compat responses alike
// (header objects, never hop-by-hop headers). Every answer the gateway writes itself is `no-store`.
import type { OutgoingHttpHeaders } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import { MeshauthError } from '../errors/index.js';
import { resetIfNotTaken } from '../sidecar/error-response.js';

export interface EdgeResponse {
  readonly headersSent: boolean;
  /** node:http2's compat response has none (undefined). */
  readonly destroyed?: boolean;
  readonly writableEnded: boolean;
  writeHead(status: number, headers: OutgoingHttpHeaders): unknown;
  end(body?: string): unknown;
  destroy(error?: Error): unknown;
  /** node:http2's compat response: the stream under it. */
  readonly stream?: ServerHttp2Stream | undefined;
}

/**
 * After an answer of the gateway's own on HTTP/2: reset its stream if the client has not taken it in time (a client
 * that never opens its flow-control window, and keeps the session busy with PINGs, held the connection for ever).
 * An HTTP/1.1 connection that does not read times out on its own.
 */
function untakenReset(res: EdgeResponse): void {
  if (res.stream !== undefined) resetIfNotTaken(res.stream);
}

export function writeError(
  res: EdgeResponse,
  error: MeshauthError,
  extra: OutgoingHttpHeaders = {},
  fields?: Readonly<Record<string, string>>,
): void {
  if (res.destroyed || res.writableEnded) return;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(fields === undefined ? error.toJSON() : { ...error.toJSON(), ...fields });
  res.writeHead(error.status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...extra,
  });
  res.end(body);
  untakenReset(res);
}

export function redirect(res: EdgeResponse, location: string, cookies: readonly string[]): void {
  if (res.destroyed || res.writableEnded) return;
  res.writeHead(302, {
    location,
    'cache-control': 'no-store',
    'content-length': 0,
    ...(cookies.length === 0 ? {} : { 'set-cookie': [...cookies] }),
  });
  res.end();
  untakenReset(res);
}

/** A human page for a refused sign-in: the fixed sentence, the code, a link to start again. */
export function loginFailedPage(res: EdgeResponse, error: MeshauthError, cookies: readonly string[]): void {
  if (res.destroyed || res.writableEnded) return;
  const body = `<!doctype html><meta charset="utf-8"><title>Sign-in failed</title><h1>${error.publicMessage}</h1><p>Code ${error.code}.</p><p><a href="/">Sign in again</a></p>\n`;
  res.writeHead(error.status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...(cookies.length === 0 ? {} : { 'set-cookie': [...cookies] }),
  });
  res.end(body);
  untakenReset(res);
}

export function withCookies(cookies: readonly string[]): OutgoingHttpHeaders {
  return cookies.length === 0 ? {} : { 'set-cookie': [...cookies] };
}

export function loginRequired(): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_LOGIN_REQUIRED', 'sign-in required', { reason: 'login_required' });
}
