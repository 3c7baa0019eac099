// The relying party's fetch to the OpenID provider (discovery, token, refresh): undici on the gateway's private
// dispatcher, with every answer's body capped. openid-client reads an answer whole before it parses it, so whatever
// answers at the issuer's address (a misbehaving provider, a captive proxy) could make the gateway buffer and parse
// hundreds of MB per sign-in; the 10 s timeout bounds only a slow answer. Past the cap the answer is the provider
// being unavailable. Does no parsing and no classification of its own.
import type * as client from 'openid-client';
import { type Agent, fetch as undiciFetch } from 'undici';
import { MeshauthError } from '../errors/index.js';

/** A discovery document or a token response is a few KiB; one with large ID tokens stays far below this. */
export const MAX_PROVIDER_BODY_BYTES = 1024 * 1024;

/** Statuses whose answers have no body: a Response cannot be built for them with one. */
const NULL_BODY_STATUS: ReadonlySet<number> = new Set([101, 103, 204, 205, 304]);

export function providerFetch(dispatcher: Agent, maxBytes = MAX_PROVIDER_BODY_BYTES): client.CustomFetch {
  return async (url, options) => {
    const response = (await undiciFetch(url, { ...options, dispatcher } as Parameters<
      typeof undiciFetch
    >[1])) as unknown as Response;
    const body = response.body;
    if (body === null || NULL_BODY_STATUS.has(response.status)) return response;
    const declared = Number(response.headers.get('content-length') ?? '0');
    if (declared > maxBytes) {
      await body.cancel().catch(() => undefined);
      throw tooLarge(maxBytes);
    }
    // A chunked (or lying) answer is counted as it arrives: past the cap the read fails and the connection goes.
    let seen = 0;
    const capped = body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          seen += chunk.byteLength;
          if (seen > maxBytes) controller.error(tooLarge(maxBytes));
          else controller.enqueue(chunk);
        },
      }),
    );
    return new Response(capped, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}

function tooLarge(maxBytes: number): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_IDP_UNAVAILABLE', `provider answer larger than ${maxBytes} bytes`, {
    reason: 'idp_unavailable',
  });
}

/**
 * The gateway's own refusal (the size cap) inside what openid-client threw: it wraps a failed fetch or body read in
 * its own errors, which would otherwise read as a bad ID token.
 */
export function ownErrorWithin(error: unknown): MeshauthError | undefined {
  return causeWithin(error, (cause): cause is MeshauthError => cause instanceof MeshauthError);
}

/** The first of `error` and the causes it wraps that `match` picks (bounded: a hostile chain may be cyclic). */
export function causeWithin<T extends object>(error: unknown, match: (cause: object) => cause is T): T | undefined {
  let cause: unknown = error;
  for (let depth = 0; depth < 8 && typeof cause === 'object' && cause !== null; depth++) {
    if (match(cause)) return cause;
    cause = (cause as { cause?: unknown }).cause;
  }
  return undefined;
}
