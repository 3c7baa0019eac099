// The three demo services (web → orders → payments): plain HTTP apps on 127.0.0.1 that know nothing about TLS.
// Each reports what its sidecar told it (caller SPIFFE ID, end user, passport chain) and calls the next service
// through its own outbound sidecar, forwarding the passport header as it would a trace header.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { parseUserHeader } from '../authn/index.js';
import { actChain, PASSPORT_HEADER } from '../authn/passport/index.js';

/** What one service saw of the request that reached it. */
export interface HopView {
  readonly service: string;
  /** The mTLS peer from x-forwarded-client-cert, or undefined for a request from outside the mesh. */
  readonly caller: string | undefined;
  readonly user: Readonly<Record<string, unknown>> | undefined;
  /** The path the request took to get here, from the passport's `act` chain (first hop first, caller last). */
  readonly chain: readonly string[];
}

export interface DemoResponse {
  readonly hops: readonly HopView[];
  readonly result?: unknown;
  readonly error?: unknown;
}

export interface Downstream {
  readonly host: string;
  readonly outboundPort: () => number;
}

export interface DemoApp {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * web:      GET /shop/orders/:id          → orders GET /orders/:id
 *           POST /shop/orders/:id/refund  → orders POST /orders/:id/refund
 * orders:   GET /orders/:id               → payments GET /payments/:id
 *           POST /orders/:id/refund       → (answers itself)
 * payments: GET /payments/:id             → (answers itself)
 */
export async function startDemoApp(service: string, downstream?: Downstream): Promise<DemoApp> {
  const server: Server = createServer((req, res) => {
    handle(service, downstream, req, res).catch((error: Error) => reply(res, 500, { hops: [], error: error.message }));
  });
  return listenOnLoopback(server);
}

/** Listens on 127.0.0.1 at an ephemeral port; `close` ends the server with its connections. */
export async function listenOnLoopback(server: Server): Promise<DemoApp> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function handle(service: string, downstream: Downstream | undefined, req: IncomingMessage, res: ServerResponse) {
  req.resume();
  const view = hopView(service, req);
  const url = new URL(req.url ?? '/', 'http://app');
  if (downstream === undefined) {
    reply(res, 200, { hops: [view], result: { payment: 'paid', id: url.pathname.split('/').at(-1) } });
    return;
  }
  if (service === 'orders' && req.method === 'POST') {
    reply(res, 200, { hops: [view], result: { refunded: true } });
    return;
  }
  const path = service === 'web' ? url.pathname.replace(/^\/shop/, '') : url.pathname.replace(/^\/orders/, '/payments');
  const passport = req.headers[PASSPORT_HEADER];
  const response = await request(`http://127.0.0.1:${downstream.outboundPort()}${path}`, {
    method: req.method === 'POST' ? 'POST' : 'GET',
    headers: { host: downstream.host, ...(typeof passport === 'string' ? { [PASSPORT_HEADER]: passport } : {}) },
  });
  const answer = prependHop(view, await response.body.text());
  if (service === 'web' && String(req.headers.accept ?? '').includes('text/html')) {
    replyHtml(res, response.statusCode, answer);
    return;
  }
  reply(res, response.statusCode, answer);
}

/** What a browser signed in at the gateway sees: each hop's caller, end user and passport chain. */
function replyHtml(res: ServerResponse, status: number, body: DemoResponse): void {
  const esc = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const rows = body.hops
    .map(
      (hop) =>
        `<tr><td>${esc(hop.service)}</td><td>${esc(hop.caller ?? '(outside the mesh)')}</td><td>${esc(String(hop.user?.sub ?? '—'))}</td><td>${esc(hop.chain.join(' → ') || '—')}</td></tr>`,
    )
    .join('');
  const text = `<!doctype html><meta charset="utf-8"><title>meshauth demo</title>
<h1>Signed in as ${esc(String(body.hops[0]?.user?.sub ?? '?'))}</h1>
<p>Each hop of GET /shop/orders/… and what its sidecar told it (verified mTLS caller, end user from the passport, the passport's call chain):</p>
<table border="1" cellpadding="6"><tr><th>hop</th><th>caller (SPIFFE ID)</th><th>end user</th><th>passport chain</th></tr>${rows}</table>
<p>Result: <code>${esc(JSON.stringify(body.result ?? body.error ?? null))}</code></p>
<p><a href="/.meshauth/logout">Sign out</a></p>
<script type="application/json" id="hops">${esc(JSON.stringify(body))}</script>
`;
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * The downstream answer with this hop in front. A demo app's answer has `hops`; anything else (a sidecar's JSON
 * error such as a 403 with its rule, or plain text) is carried as `error`.
 */
function prependHop(view: HopView, text: string): DemoResponse {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { hops: [view], error: text };
  }
  const body = parsed as Partial<DemoResponse>;
  if (!Array.isArray(body.hops)) return { hops: [view], error: parsed };
  return { ...body, hops: [view, ...body.hops] };
}

function hopView(service: string, req: IncomingMessage): HopView {
  const xfcc = req.headers['x-forwarded-client-cert'];
  const caller = typeof xfcc === 'string' ? /(?:^|;)URI=([^;,]+)/.exec(xfcc)?.[1] : undefined;
  const userHeader = req.headers['x-meshauth-user'];
  const user = typeof userHeader === 'string' ? parseUserHeader(userHeader) : undefined;
  return { service, caller, user, chain: chainOf(req.headers[PASSPORT_HEADER]) };
}

/** The `act` chain of the newest passport JWS, for display only (the sidecar has verified it). */
function chainOf(passport: string | string[] | undefined): string[] {
  if (typeof passport !== 'string' || !passport.includes(',')) return [];
  try {
    const link = passport.split(',')[0] as string;
    const claims = JSON.parse(Buffer.from(link.split('.')[1] ?? '', 'base64url').toString()) as {
      act?: { sub: string };
    };
    return claims.act === undefined ? [] : actChain(claims.act);
  } catch {
    return [];
  }
}

function reply(res: ServerResponse, status: number, body: DemoResponse): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
