// Reference proxies for the floor measurement (bench/profile/floor.ts), each a few lines of Node with no meshauth
// code, to split the sidecar pair's CPU per request into what Node itself costs and what meshauth adds. Each runs
// as its own process: `node dist/bench/profile/floor-proxy.js JSON` with {mode, role, target, files, caFile}, and
// prints `{"port":N}` once listening on 127.0.0.1.
//   pipe     bytes only: plain TCP in, one mTLS connection per client connection, no HTTP parsing
//   lean     Node's llhttp (`_http_common`) on every request and response head, the request head rewritten
//            (identity header set from the connection's peer certificate, read once), bodies and responses
//            streamed as they come, one mTLS connection per client connection (the connection's requests in order)
//   node-h1  node:http server → node:https keep-alive agent (outbound); node:https server → node:http agent (inbound)
//   node-h2  node:http server → one node:http2 session (outbound); node:http2 server → node:http agent (inbound):
//            meshauth's own protocol layout with none of its code
//   lean-h2  node-h2 with the outbound's node:http server replaced by llhttp on the raw client socket (the
//            request head parsed once into HTTP/2 headers, the response head written with the first body bytes):
//            what the app-facing half of the outbound costs on its own
//   node-lean node:http on both app-facing sides, lean HTTP/1.1 between the proxies: the outbound takes a kept-alive
//            mTLS connection per request from a pool, writes the rebuilt head and reads the answer with llhttp; the
//            inbound parses requests off the mTLS socket with llhttp and forwards each through a node:http agent:
//            what the mesh hop alone costs when neither end uses Node's HTTP layers for it
// The HTTP/2 clients start their streams through the product's requestStream (src/platform/h2-request.ts), as the
// sidecar does since Round 19: node:http2's per-call overheads it avoids are no part of the floor.
// Not product code: no limits, no timeouts, no policy; measurement only.
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, Agent as HttpAgent, request as httpRequest, STATUS_CODES } from 'node:http';
import {
  type ClientHttp2Session,
  createSecureServer,
  connect as http2Connect,
  type OutgoingHttpHeaders,
} from 'node:http2';
import { createServer as createHttpsServer, Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { createServer as createNetServer, connect as netConnect, type Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { createServer as createTlsServer, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { requestStream } from '../../src/platform/h2-request.js';
import { HTTP_METHODS, HTTPParser, type LlhttpParser, llhttpParser, releaseParser } from '../../src/platform/llhttp.js';
import type { PemFiles } from '../bench-pki.js';

export type FloorMode = 'pipe' | 'lean' | 'node-h1' | 'node-h2' | 'lean-h2' | 'node-lean';

export interface FloorProxySpec {
  readonly mode: FloorMode;
  readonly role: 'out' | 'in';
  /** Outbound: the inbound's port; inbound: the app's port. */
  readonly target: number;
  readonly files: PemFiles;
  readonly caFile: string;
}

const IDENTITY_HEADER = 'x-forwarded-client-cert';
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te']);

function tlsMaterial(spec: FloorProxySpec) {
  return {
    cert: readFileSync(spec.files.chainFile),
    key: readFileSync(spec.files.keyFile),
    ca: readFileSync(spec.caFile),
  };
}

/** The URI SAN of the peer's leaf, read once per connection. */
function peerIdentity(socket: TLSSocket): string {
  const san = socket.getPeerCertificate().subjectaltname ?? '';
  const uri = san.split(', ').find((entry) => entry.startsWith('URI:'));
  return `URI=${uri?.slice(4) ?? ''}`;
}

function pair(a: Socket, b: Socket): void {
  const destroyBoth = () => {
    a.destroy();
    b.destroy();
  };
  a.on('error', destroyBoth).on('close', destroyBoth);
  b.on('error', destroyBoth).on('close', destroyBoth);
}

function connectInbound(spec: FloorProxySpec, alpn: string[]): TLSSocket {
  const socket = tlsConnect({
    host: '127.0.0.1',
    port: spec.target,
    servername: 'localhost',
    ALPNProtocols: alpn,
    ...tlsMaterial(spec),
  });
  socket.setNoDelay(true);
  return socket;
}

// ---- pipe --------------------------------------------------------------------------------------------------------

function pipeProxy(spec: FloorProxySpec) {
  if (spec.role === 'out') {
    return createNetServer((client) => {
      client.setNoDelay(true);
      const upstream = connectInbound(spec, ['http/1.1']);
      pair(client, upstream);
      client.pipe(upstream).pipe(client);
    });
  }
  return createTlsServer({ ...tlsMaterial(spec), requestCert: true, rejectUnauthorized: true }, (peer) => {
    peer.setNoDelay(true);
    const app = netConnect({ host: '127.0.0.1', port: spec.target, noDelay: true });
    pair(peer, app);
    peer.pipe(app).pipe(peer);
  });
}

// ---- lean (llhttp) -------------------------------------------------------------------------------------------------

const responsesByStatus = new Map<number, number>();

interface ParsedHead {
  /** Flat `[name, value, …]`, as llhttp gave them (gathered when a head comes in more than one part). */
  readonly fields: string[];
  readonly method: string;
  readonly url: string;
  readonly status: number;
}

/** One llhttp parser (strict, 16 KiB heads) whose heads, body chunks and message ends go to `on`. */
function llhttp(
  type: 'request' | 'response',
  on: { head(head: ParsedHead): void; body?(chunk: Buffer): void; end?(): void },
): LlhttpParser {
  const parser = llhttpParser(type, 16 * 1024);
  let pending: string[] = [];
  parser[HTTPParser.kOnHeaders] = (fields: string[]) => {
    pending = pending.concat(fields);
  };
  parser[HTTPParser.kOnHeadersComplete] = (
    _major: number,
    _minor: number,
    fields: string[] | undefined,
    method: number,
    url: string,
    status: number,
  ) => {
    const all = fields ?? pending;
    pending = [];
    on.head({ fields: all, method: HTTP_METHODS[method] ?? 'GET', url, status });
    return 0;
  };
  parser[HTTPParser.kOnBody] = (chunk: Buffer) => on.body?.(chunk);
  parser[HTTPParser.kOnMessageComplete] = () => on.end?.();
  return parser;
}

/**
 * Parses the requests arriving on `socket` with llhttp; `forward` sends each head on and returns where its body goes
 * (undefined: none), which gets the body's chunks and its end. The parser is freed with the socket.
 */
function forwardRequests(socket: Socket, forward: (head: ParsedHead) => Writable | undefined): void {
  let upload: Writable | undefined;
  const requests = llhttp('request', {
    head: (head) => {
      upload = forward(head);
    },
    body: (chunk) => upload?.write(Buffer.from(chunk)),
    end: () => {
      upload?.end();
      upload = undefined;
    },
  });
  socket.on('data', (chunk: Buffer) => {
    if (requests.execute(chunk) instanceof Error) socket.destroy();
  });
  socket.on('error', () => socket.destroy());
  socket.once('close', () => releaseParser(requests));
}

/**
 * Parses the requests arriving on `from`, writes each head rebuilt by `head` and each body chunk to `to`; the
 * responses coming back on `to` are parsed (for their framing and status) and written to `from` as they came.
 */
function leanRelay(from: Socket, to: Socket, head: (method: string, url: string, fields: string[]) => string): void {
  const requests = llhttp('request', {
    head: ({ method, url, fields }) => to.write(head(method, url, fields)),
    body: (chunk) => to.write(chunk),
  });
  // What a product counts per response (its status), to keep that cost in the measurement.
  const responses = llhttp('response', {
    head: ({ status }) => responsesByStatus.set(status, (responsesByStatus.get(status) ?? 0) + 1),
  });
  from.on('data', (chunk: Buffer) => {
    if (requests.execute(chunk) instanceof Error) from.destroy();
  });
  to.on('data', (chunk: Buffer) => {
    if (responses.execute(chunk) instanceof Error) to.destroy();
    else from.write(chunk);
  });
  from.once('close', () => {
    releaseParser(requests);
    releaseParser(responses);
  });
  pair(from, to);
}

/** A request head with hop-by-hop and identity fields dropped and `extra` (one CRLF-terminated line or '') added. */
function rebuiltHead(method: string, url: string, fields: string[], extra: string): string {
  let head = `${method} ${url} HTTP/1.1\r\n`;
  for (let i = 0; i < fields.length; i += 2) {
    const name = (fields[i] as string).toLowerCase();
    if (HOP_BY_HOP.has(name) || name === IDENTITY_HEADER) continue;
    head += `${fields[i]}: ${fields[i + 1]}\r\n`;
  }
  return `${head}${extra}\r\n`;
}

function leanProxy(spec: FloorProxySpec) {
  if (spec.role === 'out') {
    return createNetServer((client) => {
      client.setNoDelay(true);
      leanRelay(client, connectInbound(spec, ['http/1.1']), (method, url, fields) =>
        rebuiltHead(method, url, fields, ''),
      );
    });
  }
  return createTlsServer({ ...tlsMaterial(spec), requestCert: true, rejectUnauthorized: true }, (peer) => {
    peer.setNoDelay(true);
    const line = `${IDENTITY_HEADER}: ${peerIdentity(peer)}\r\n`;
    const app = netConnect({ host: '127.0.0.1', port: spec.target, noDelay: true });
    leanRelay(peer, app, (method, url, fields) => rebuiltHead(method, url, fields, line));
  });
}

// ---- node-h1 / node-h2 ---------------------------------------------------------------------------------------------

function forwardHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || name === IDENTITY_HEADER || name.startsWith(':')) continue;
    out[name] = value;
  }
  return out;
}

function toApp(
  spec: FloorProxySpec,
  agent: HttpAgent,
  method: string,
  path: string,
  headers: Record<string, string | string[]>,
) {
  return httpRequest({ host: '127.0.0.1', port: spec.target, agent, method, path, headers });
}

function nodeH1Proxy(spec: FloorProxySpec) {
  if (spec.role === 'out') {
    const agent = new HttpsAgent({ keepAlive: true, maxSockets: 256, servername: 'localhost', ...tlsMaterial(spec) });
    return createHttpServer((req, res) => {
      const upstream = httpsRequest(
        {
          host: '127.0.0.1',
          port: spec.target,
          agent,
          method: req.method,
          path: req.url,
          headers: forwardHeaders(req.headers),
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, forwardHeaders(answer.headers));
          answer.pipe(res);
        },
      );
      req.pipe(upstream);
    });
  }
  const agent = new HttpAgent({ keepAlive: true, maxSockets: 256 });
  const identities = new WeakMap<object, string>();
  return createHttpsServer({ ...tlsMaterial(spec), requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const socket = req.socket as TLSSocket;
    let identity = identities.get(socket);
    if (identity === undefined) {
      identity = peerIdentity(socket);
      identities.set(socket, identity);
    }
    const headers = forwardHeaders(req.headers);
    headers[IDENTITY_HEADER] = identity;
    const upstream = toApp(spec, agent, req.method ?? 'GET', req.url ?? '/', headers);
    upstream.on('response', (answer) => {
      res.writeHead(answer.statusCode ?? 502, forwardHeaders(answer.headers));
      answer.pipe(res);
    });
    req.pipe(upstream);
  });
}

/** One HTTP/2 session to the inbound, opened again when it ends. */
function h2SessionOpener(spec: FloorProxySpec): () => ClientHttp2Session {
  let session: ClientHttp2Session | undefined;
  return () => {
    if (session === undefined || session.closed || session.destroyed) {
      session = http2Connect(`https://127.0.0.1:${spec.target}`, {
        createConnection: () => connectInbound(spec, ['h2']),
        ...tlsMaterial(spec),
      });
      session.on('error', () => undefined);
    }
    return session;
  };
}

function nodeH2Proxy(spec: FloorProxySpec) {
  if (spec.role === 'out') {
    const open = h2SessionOpener(spec);
    return createHttpServer((req, res) => {
      const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
      const headers = {
        ...forwardHeaders(req.headers),
        ':method': req.method ?? 'GET',
        ':path': req.url ?? '/',
        ':authority': req.headers.host ?? 'app',
      };
      const stream = requestStream(open(), headers, !hasBody);
      stream.on('response', (headers) => {
        res.writeHead(Number(headers[':status']), forwardHeaders(headers));
        stream.pipe(res);
      });
      stream.on('error', () => res.destroy());
      if (hasBody) req.pipe(stream);
    });
  }
  const agent = new HttpAgent({ keepAlive: true, maxSockets: 256 });
  const server = createSecureServer({ ...tlsMaterial(spec), requestCert: true, rejectUnauthorized: true });
  const identities = new WeakMap<object, string>();
  server.on('stream', (stream, headers) => {
    const socket = stream.session?.socket as TLSSocket;
    let identity = identities.get(socket);
    if (identity === undefined) {
      identity = peerIdentity(socket);
      identities.set(socket, identity);
    }
    const forwarded = forwardHeaders(headers);
    forwarded[IDENTITY_HEADER] = identity;
    forwarded.host = String(headers[':authority'] ?? 'app');
    const upstream = toApp(spec, agent, String(headers[':method']), String(headers[':path']), forwarded);
    upstream.on('response', (answer) => {
      stream.respond({ ':status': answer.statusCode ?? 502, ...forwardHeaders(answer.headers) });
      answer.pipe(stream);
    });
    upstream.on('error', () => stream.destroy());
    stream.pipe(upstream);
  });
  return server;
}

/**
 * The client's requests parsed by llhttp and sent as HTTP/2 streams, one at a time per connection (wrk does not
 * pipeline); each response head is written with the body's bytes in one write.
 */
function leanH2Proxy(spec: FloorProxySpec) {
  if (spec.role === 'in') return nodeH2Proxy(spec);
  const open = h2SessionOpener(spec);
  return createNetServer((client) => {
    client.setNoDelay(true);
    forwardRequests(client, ({ method, url, fields }) => {
      const headers: OutgoingHttpHeaders = { ':method': method, ':path': url };
      let hasBody = false;
      for (let i = 0; i < fields.length; i += 2) {
        const name = (fields[i] as string).toLowerCase();
        const value = fields[i + 1] as string;
        if (name === 'host') headers[':authority'] = value;
        else if (name === 'content-length') {
          hasBody = value !== '0';
          headers[name] = value;
        } else if (name === 'transfer-encoding') hasBody = true;
        else if (!HOP_BY_HOP.has(name) && name !== IDENTITY_HEADER) headers[name] = value;
      }
      const stream = requestStream(open(), headers, !hasBody);
      stream.on('response', (answer) => {
        const fields = Object.entries(answer)
          .filter(([name]) => !name.startsWith(':'))
          .flatMap(([name, value]) => [name, String(value)]);
        relayResponse(client, Number(answer[':status']), fields, stream);
      });
      stream.on('error', () => client.destroy());
      return hasBody ? stream : undefined;
    });
  });
}

/**
 * Writes an HTTP/1.1 response head (`fields` flat, hop-by-hop ones dropped) and then `body` to `to`, chunked when
 * the head has no length, all corked until the body's end: one write for a small answer.
 */
function relayResponse(to: Socket, status: number, fields: string[], body: Readable): void {
  const { head, chunked } = responseHead(status, fields);
  to.cork();
  to.write(head);
  body.on('data', (chunk: Buffer) => {
    if (chunked) to.write(`${chunk.length.toString(16)}\r\n`);
    to.write(chunk);
    if (chunked) to.write('\r\n');
  });
  body.on('end', () => {
    if (chunked) to.write('0\r\n\r\n');
    to.uncork();
  });
}

/** Serializes a response head from node:http's raw header list, chunked when it has no length. */
function responseHead(status: number, raw: string[]): { head: string; chunked: boolean } {
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`;
  let framed = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (HOP_BY_HOP.has(name)) continue;
    if (name === 'content-length') framed = true;
    head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  }
  return { head: `${head}${framed ? '' : 'transfer-encoding: chunked\r\n'}\r\n`, chunked: !framed };
}

function nodeLeanProxy(spec: FloorProxySpec) {
  if (spec.role === 'out') {
    const idle: TLSSocket[] = [];
    return createHttpServer((req, res) => {
      const socket = idle.pop() ?? connectInbound(spec, ['http/1.1']);
      const headers = forwardHeaders(req.headers);
      let head = `${req.method} ${req.url} HTTP/1.1\r\n`;
      for (const name in headers) head += `${name}: ${String(headers[name])}\r\n`;
      const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
      socket.write(`${head}${hasBody ? 'transfer-encoding: chunked\r\n' : ''}\r\n`);
      if (hasBody) {
        req.on('data', (chunk: Buffer) =>
          socket.write(`${chunk.length.toString(16)}\r\n${chunk.toString('latin1')}\r\n`),
        );
        req.on('end', () => socket.write('0\r\n\r\n'));
      }
      const responses = llhttp('response', {
        head: ({ status, fields }) => {
          const out: Record<string, string> = {};
          for (let i = 0; i < fields.length; i += 2) {
            const name = (fields[i] as string).toLowerCase();
            if (!HOP_BY_HOP.has(name)) out[name] = fields[i + 1] as string;
          }
          res.writeHead(status, out);
        },
        body: (chunk) => res.write(Buffer.from(chunk)),
        end: () => {
          socket.removeListener('data', onData);
          socket.removeListener('error', onError);
          releaseParser(responses);
          idle.push(socket);
          res.end();
        },
      });
      const onData = (chunk: Buffer) => {
        if (responses.execute(chunk) instanceof Error) socket.destroy();
      };
      const onError = () => res.destroy();
      socket.on('data', onData).on('error', onError);
    });
  }
  const agent = new HttpAgent({ keepAlive: true, maxSockets: 256 });
  return createTlsServer({ ...tlsMaterial(spec), requestCert: true, rejectUnauthorized: true }, (peer) => {
    peer.setNoDelay(true);
    const identity = peerIdentity(peer);
    forwardRequests(peer, ({ method, url, fields }) => {
      const headers: Record<string, string> = { [IDENTITY_HEADER]: identity };
      for (let i = 0; i < fields.length; i += 2) {
        const name = (fields[i] as string).toLowerCase();
        if (!HOP_BY_HOP.has(name) && name !== IDENTITY_HEADER) headers[name] = fields[i + 1] as string;
      }
      const upstream = toApp(spec, agent, method, url, headers);
      upstream.on('response', (answer) => relayResponse(peer, answer.statusCode ?? 502, answer.rawHeaders, answer));
      upstream.on('error', () => peer.destroy());
      return upstream;
    });
  });
}

const PROXIES = {
  'node-lean': nodeLeanProxy,
  pipe: pipeProxy,
  lean: leanProxy,
  'node-h1': nodeH1Proxy,
  'node-h2': nodeH2Proxy,
  'lean-h2': leanH2Proxy,
} as const;

const spec = JSON.parse(process.argv[2] ?? '{}') as FloorProxySpec;
const server = PROXIES[spec.mode](spec);
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(
    `${JSON.stringify({ port: typeof address === 'object' && address !== null ? address.port : 0 })}\n`,
  );
});
