// Bounded JSON GET for OIDC discovery and JWKS: undici with a whole-request timeout,
// a response-size cap, no redirects, and a URL policy (https only; http only to loopback for tests and demos).

import type { Dispatcher } from 'undici';
import { isLoopbackHost } from '../config/host-port.js';
import { loadUndici } from '../platform/index.js';

export interface FetchJsonOptions {
  readonly timeoutMs: number;
  readonly maxBytes: number;
  readonly dispatcher?: Dispatcher;
}

/** Why a fetch failed, bounded for logs. */
export type FetchFailure = 'timeout' | 'status' | 'too_large' | 'invalid_json' | 'network' | 'url';

export class FetchJsonError extends Error {
  override readonly name = 'FetchJsonError';
  constructor(
    readonly failure: FetchFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Returns why `url` may not be fetched, or undefined when it may. `https:` always; `http:` only to 127.0.0.0/8,
 * ::1 or localhost, so local demos and tests work without TLS while nothing crosses a network in clear text.
 */
export function checkFetchableUrl(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `${JSON.stringify(url)} is not a URL`;
  }
  if (parsed.username !== '' || parsed.password !== '') return 'URL must not carry credentials';
  if (parsed.protocol === 'https:') return undefined;
  if (parsed.protocol === 'http:' && isLoopbackHost(parsed.hostname.replace(/^\[(.*)\]$/, '$1'))) return undefined;
  return `${parsed.protocol}//${parsed.host} is not allowed: use https (http only to loopback)`;
}

/** GET `url` and parse it as JSON, or throw FetchJsonError. Never follows redirects (a 3xx is an error). */
export async function fetchJson(url: string, options: FetchJsonOptions): Promise<unknown> {
  const problem = checkFetchableUrl(url);
  if (problem !== undefined) throw new FetchJsonError('url', problem);
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, options.timeoutMs);
  timer.unref();
  try {
    const { request } = await loadUndici();
    const response = await request(url, {
      method: 'GET',
      headers: { accept: 'application/json' },
      signal: controller.signal,
      ...(options.dispatcher === undefined ? {} : { dispatcher: options.dispatcher }),
    });
    if (response.statusCode !== 200) {
      await response.body.dump();
      throw new FetchJsonError('status', `HTTP ${response.statusCode}`);
    }
    const declared = Number(response.headers['content-length']);
    if (Number.isFinite(declared) && declared > options.maxBytes) {
      // Destroyed unread, undici's body emits an AbortError: with no listener that would be an uncaught exception.
      response.body.on('error', () => undefined);
      response.body.destroy();
      throw new FetchJsonError('too_large', `content-length ${declared} exceeds ${options.maxBytes}`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response.body) {
      const buffer = chunk as Buffer;
      size += buffer.length;
      if (size > options.maxBytes) {
        response.body.destroy();
        throw new FetchJsonError('too_large', `response exceeds ${options.maxBytes} bytes`);
      }
      chunks.push(buffer);
    }
    try {
      return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks)));
    } catch (cause) {
      throw new FetchJsonError('invalid_json', 'response is not JSON', { cause });
    }
  } catch (error) {
    if (error instanceof FetchJsonError) throw error;
    if (timedOut) throw new FetchJsonError('timeout', `no complete response within ${options.timeoutMs} ms`);
    throw new FetchJsonError('network', (error as Error).message ?? 'network error', { cause: error });
  } finally {
    clearTimeout(timer);
  }
}
