// The Node and undici behaviours the data path relies on that are not (or not clearly) public API, in one place,
// each with a test (test/integration/inbound-node-internals.test.ts) that fails loudly if an upgrade changes it.
// Code elsewhere calls these helpers instead of reaching into internals itself.
import type { Server as HttpServer, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';

/**
 * An http.Server that never listens (sockets are handed to it with emit('connection')) still needs its
 * headersTimeout / requestTimeout sweeper, which Node starts on 'listening' (lib/_http_server.js
 * setupConnectionsTracking).
 */
export function startTimeoutSweeper(server: HttpServer): void {
  server.emit('listening');
}

/**
 * The response an http.Server is writing on `socket` (Node's `socket._httpMessage`), or undefined between
 * exchanges. Tells an idle keep-alive connection from one with an exchange in flight, and whether a parse error
 * hit a request that was already answered.
 */
export function pendingResponse(socket: Socket): ServerResponse | undefined {
  return (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined;
}

/**
 * undici 7 leaves `code` unset on most response parse errors (client-h1 looks llhttp's name-keyed ERROR table up by
 * number); its HTTPParserError is recognised by name.
 */
export const UNDICI_PARSER_ERROR_NAME = 'HTTPParserError';

/** undici error codes the inbound classifies (lib/core/errors.js). */
export const UNDICI_CODES = Object.freeze({
  headersTimeout: 'UND_ERR_HEADERS_TIMEOUT',
  bodyTimeout: 'UND_ERR_BODY_TIMEOUT',
  connectTimeout: 'UND_ERR_CONNECT_TIMEOUT',
  contentLengthMismatch: 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  info: 'UND_ERR_INFO',
});

/*
 * Relied on without a helper (each pinned by a test):
 * - Http2Session 'stream' passes the decoded header list as its 4th argument (`rawHeaders`), where the header object
 *   keeps only the first of a repeated single-value field.
 * - Http2Stream.close(code) ends the writable side first (END_STREAM) and only then sends RST_STREAM; destroy(error)
 *   sends RST_STREAM(INTERNAL_ERROR) with no END_STREAM.
 * - A server Http2Stream emits 'aborted' synchronously when it is reset before its response ended, before its
 *   readable side ends.
 * - With a 'tlsClientError' listener, Node no longer closes a socket whose handshake failed or timed out.
 * - A TLS server that does not verify client chains itself (no `ca`) reports the whole chain the client sent in
 *   getPeerCertificate(true); once OpenSSL verified it, Node 24 reports the leaf alone (the CA relies on the first,
 *   the inbound's root-removal check completes the chain for the second).
 */

// Node's own llhttp binding, as node:http's client uses it (lib/_http_client.js, lib/_http_common.js). `_http_common`
// is a public module name on every Node line this runs on; the binding's callback slots and argument lists are
// pinned by test/integration/inbound-app-client.test.ts (informational responses, HEAD, long header lists handed
// over in parts, EOF-delimited and short bodies, parse errors).
interface HttpParserBinding {
  initialize(type: number, resource: object, maxHeaderSize: number, lenientFlags: number): void;
  execute(data: Buffer): number | Error;
  finish(): Error | undefined;
  close(): void;
  remove(): void;
  [slot: number]: unknown;
}
interface HttpParserClass {
  new (): HttpParserBinding;
  readonly RESPONSE: number;
  readonly kOnMessageBegin: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
}
const httpCommon = createRequire(import.meta.url)('_http_common') as {
  HTTPParser: HttpParserClass;
  _checkInvalidHeaderChar(value: string): boolean;
};
const HTTPParser = httpCommon.HTTPParser;

/** True when `value` cannot be sent as a header field value (control characters, CR, LF, NUL). */
export const invalidHeaderValue: (value: string) => boolean = httpCommon._checkInvalidHeaderChar;

export interface AppParserEvents {
  /** The first byte of a response arrived. */
  begin(): void;
  /** The response head; returns true when the response has no body whatever its head says (a HEAD request). */
  headers(status: number, rawHeaders: string[], keepAlive: boolean): boolean;
  body(chunk: Buffer): void;
  complete(): void;
}

/** A strict (no lenient flags) HTTP/1.x response parser on Node's llhttp, one per connection. */
export class AppParser {
  readonly #parser: HttpParserBinding;
  /** Header lines delivered early by llhttp when a head has many of them (kOnHeaders). */
  #partial: string[] = [];

  constructor(maxHeaderBytes: number, events: AppParserEvents) {
    const parser = new HTTPParser();
    parser.initialize(HTTPParser.RESPONSE, {}, maxHeaderBytes, 0);
    parser[HTTPParser.kOnMessageBegin] = () => events.begin();
    parser[HTTPParser.kOnHeaders] = (lines: string[]) => {
      for (const line of lines) this.#partial.push(line);
    };
    parser[HTTPParser.kOnHeadersComplete] = (
      _major: number,
      _minor: number,
      lines: string[] | undefined,
      _method: unknown,
      _url: unknown,
      status: number,
      _statusMessage: string,
      _upgrade: boolean,
      keepAlive: boolean,
    ): number => {
      let headers = lines;
      if (headers === undefined) {
        headers = this.#partial;
        this.#partial = [];
      }
      return events.headers(status, headers, keepAlive) ? 1 : 0;
    };
    parser[HTTPParser.kOnBody] = (chunk: Buffer) => events.body(chunk);
    parser[HTTPParser.kOnMessageComplete] = () => {
      // Trailer fields arrive through kOnHeaders too; they are not forwarded and must not prefix the next head.
      if (this.#partial.length > 0) this.#partial = [];
      events.complete();
    };
    this.#parser = parser;
  }

  /** Parses `data`; an Error (code `HPE_*`) when it is not a valid response stream. */
  execute(data: Buffer): Error | undefined {
    const result = this.#parser.execute(data);
    return typeof result === 'number' ? undefined : result;
  }

  /** The connection ended: completes a body delimited by it, or an Error when the response was incomplete. */
  finish(): Error | undefined {
    return this.#parser.finish() ?? undefined;
  }

  close(): void {
    const parser = this.#parser;
    parser.remove();
    // Node closes a parser only once the current callback stack has unwound (lib/_http_common.js freeParser).
    setImmediate(() => parser.close());
  }
}
