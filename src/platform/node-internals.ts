// The Node and undici behaviours the sidecar's data path and the CA's door (src/ca/door.ts) rely on that are not (or
// not clearly) public API, in one place, each with a test (test/integration/inbound-node-internals.test.ts) that fails loudly if an upgrade changes it.
// Code elsewhere calls these helpers instead of reaching into internals itself.
import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';

/**
 * An http.Server that never listens (sockets are handed to it with emit('connection')) still needs its
 * headersTimeout / requestTimeout sweeper, which Node starts on 'listening' (lib/_http_server.js
 * setupConnectionsTracking).
 */
export function startTimeoutSweeper(server: HttpServer): void {
  server.emit('listening');
}

/** Node's names for an http.Server's headersTimeout / requestTimeout sweeper (a Timeout) and what it sweeps. */
const TIMEOUT_SWEEPER = 'http.server.connectionsCheckingInterval';
const SWEPT_CONNECTIONS = 'http.server.connections';

/** What setInterval's Timeout keeps of its callback and period, and Node's list of a server's connections. */
interface SweeperFields {
  readonly _onTimeout?: unknown;
  readonly _repeat?: unknown;
}
interface ConnectionList {
  readonly all?: unknown;
}

/**
 * Runs an http.Server's headersTimeout / requestTimeout sweeper only while the server has connections to sweep.
 * Node starts it on 'listening' and keeps it for the server's life (every connectionsCheckingInterval, 1 s in
 * meshauth's servers), so an idle process woke every second for each such server; on a VM each wake-up of an idle
 * process costs it a few hundred µs. Here it stops after a sweep that finds no connection in Node's list and starts
 * again (same callback and period) with the next connection ('connection', or 'secureConnection' where TLS comes
 * first). No listener per socket. Call it before the server listens (or before startTimeoutSweeper). Where Node
 * keeps these under other names or shapes, nothing changes.
 */
export function sweepTimeoutsWhileConnected(server: HttpServer): void {
  const fields = server as unknown as Record<symbol, unknown>;
  let sweeperKey: symbol | undefined;
  let armed = true;
  let start = (): void => undefined;
  // Registered after the constructor's own 'listening' listener, which starts the sweeper: it runs once that did.
  server.on('listening', () => {
    const symbols = Object.getOwnPropertySymbols(server);
    const key = symbols.find((symbol) => symbol.description === TIMEOUT_SWEEPER);
    const listKey = symbols.find((symbol) => symbol.description === SWEPT_CONNECTIONS);
    const timer = (key === undefined ? undefined : fields[key]) as SweeperFields | undefined;
    const list = (listKey === undefined ? undefined : fields[listKey]) as ConnectionList | undefined;
    if (typeof timer?._onTimeout !== 'function' || typeof timer._repeat !== 'number') return;
    if (typeof list?.all !== 'function' || key === undefined) return;
    const nodeSweep = timer._onTimeout as () => void;
    const periodMs = timer._repeat;
    const connections = list.all.bind(list) as () => readonly unknown[];
    sweeperKey = key;
    const sweep = (): void => {
      nodeSweep();
      if (connections().length > 0) return;
      clearInterval(fields[key] as NodeJS.Timeout);
      armed = false;
    };
    start = () => {
      armed = true;
      const next = setInterval(sweep, periodMs);
      next.unref();
      fields[key] = next; // where server.close() clears it
    };
    clearInterval(timer as NodeJS.Timeout);
    start();
  });
  const arm = (): void => {
    if (!armed && sweeperKey !== undefined) start();
  };
  server.on('connection', arm);
  server.on('secureConnection', arm);
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
 * Whether `res` has written (or queued, behind earlier answers) a head that closes its connection: `Connection:
 * close`, however it was set (Node's `_last`; `getHeader` does not see headers given to writeHead as an object).
 */
export function answerClosesConnection(res: ServerResponse): boolean {
  return (res as ServerResponse & { _last?: unknown })._last === true;
}

/**
 * Keeps an HTTP/1.1 server socket reading after a response that finished before its request body ended, with the
 * rest of that body discarded. node:http would not: when the response said `Connection: close`, resOnFinish ends the
 * socket and destroys it on 'finish' (`socket.destroySoon()`), undone here; and once the body's reader destroyed the
 * request (undici does when the app is done with it), lib/_http_common.js parserOnBody pushes each later chunk into
 * the destroyed stream, gets false, and stops reading the socket for good. A dumped request (`req._dump()`, what
 * resOnFinish does to one nobody reads) has its chunks dropped instead. False when the socket is already destroyed.
 */
export function keepReadingAfterEnd(socket: Socket, req: IncomingMessage): boolean {
  socket.removeListener('finish', socket.destroy);
  if (socket.destroyed) return false;
  (req as IncomingMessage & { _dump(): void })._dump();
  socket.resume(); // reading may have been stopped already (parserOnBody's readStop)
  return true;
}

/**
 * A 'clientError' listener that passes on each socket's first error only: after a parse error node:http emits
 * clientError again on every later read while the answer to the broken request flushes (the parser stays failed),
 * so one broken request would be answered, counted and logged several times.
 */
export function firstClientErrorOnly<E extends Error, S extends object>(
  listener: (error: E, socket: S) => void,
): (error: E, socket: S) => void {
  const failed = new WeakSet<S>();
  return (error, socket) => {
    if (failed.has(socket)) return;
    failed.add(socket);
    listener(error, socket);
  };
}

/**
 * The TCP socket under `socket` (itself when it is one), or undefined when Node kept no reference to it. A TLSSocket
 * made by tls.Server (or over a given socket) keeps that net.Socket as `_parent`; Node has no public accessor for it.
 * Without one (tls.connect made the TCP socket itself) the caller must know the TCP socket some other way.
 */
export function tcpSocketOf(socket: Socket): Socket | undefined {
  if (!(socket instanceof TLSSocket)) return socket;
  const parent = (socket as unknown as { _parent?: unknown })._parent;
  return parent instanceof Socket ? parent : undefined;
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
 *   getPeerCertificate(true), leaf first, and so does one whose chain OpenSSL verified, unless something called
 *   getPeerX509Certificate() on the socket first: that call takes the intermediates out of the session (and leaks
 *   them), after which Node reports the leaf alone. Node 24's tls.Server makes that call itself for every verified
 *   client, so the inbound starts its handshakes without tls.Server (src/platform/tls-accept.ts); nothing in
 *   meshauth makes it on a server socket.
 * - A TLS server handed a net.Socket with emit('connection') first takes the bytes already read and put back with
 *   unshift() (the CA's door reads a connection's first bytes before it lets the TLS server have it), then reads
 *   through the socket's handle (test/integration/ca-connection-gate.test.ts).
 * - A TLS client socket takes the certificate it hands checkServerIdentity from `this.getPeerCertificate(true)`, so
 *   an own property of the socket answers that call; Node skips it after a chain error or a resumed session
 *   (src/tls/leaf-only-identity-check.ts; test/integration/tls-leaf-identity-check.test.ts, and through
 *   node:https in test/integration/ca-client-transport.test.ts).
 */
