// Node's own llhttp parser, the one node:http runs, for code that parses HTTP/1.1 heads without node:http's
// IncomingMessage and ServerResponse (the outbound's lean lane, the floor tool's reference proxies). Reached through
// `_http_common`, the module node:http itself takes it from: the parser comes with Node, so it is never one of ours.
// Strict: no lenient flags, as node:http with insecureHTTPParser off.
import { createRequire } from 'node:module';

export interface LlhttpParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenientFlags: number): void;
  /** Bytes consumed, or the parse error (its `code` is llhttp's, e.g. HPE_HEADER_OVERFLOW). */
  execute(data: Buffer): number | Error;
  /** The input ended: completes a message delimited by the connection's end, or the parse error. */
  finish(): undefined | Error;
  /** Frees the native parser (releaseParser). */
  close(): void;
  [slot: number]: unknown;
}

interface LlhttpParserClass {
  new (): LlhttpParser;
  readonly REQUEST: number;
  readonly RESPONSE: number;
  readonly kOnMessageBegin: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
}

const httpCommon = createRequire(import.meta.url)('_http_common') as {
  HTTPParser: LlhttpParserClass;
  methods: string[];
};

export const HTTPParser = httpCommon.HTTPParser;
/** Method names by llhttp's method index (kOnHeadersComplete's fourth argument). */
export const HTTP_METHODS: readonly string[] = httpCommon.methods;

/** A strict parser of requests or responses whose heads may be up to `maxHeaderBytes`. */
export function llhttpParser(type: 'request' | 'response', maxHeaderBytes: number): LlhttpParser {
  const parser = new HTTPParser();
  parser.initialize(type === 'request' ? HTTPParser.REQUEST : HTTPParser.RESPONSE, {}, maxHeaderBytes, 0);
  return parser;
}

/**
 * Frees `parser`: its callbacks are dropped (they hold the socket and whatever the caller's closures hold) and its
 * native object is closed once the current stack has unwound (it may be the one calling). node:http frees its own
 * the same way; a parser never closed is never collected, nor anything its callbacks reach.
 */
export function releaseParser(parser: LlhttpParser): void {
  parser[HTTPParser.kOnMessageBegin] = null;
  parser[HTTPParser.kOnHeaders] = null;
  parser[HTTPParser.kOnHeadersComplete] = null;
  parser[HTTPParser.kOnBody] = null;
  parser[HTTPParser.kOnMessageComplete] = null;
  setImmediate(() => parser.close());
}
