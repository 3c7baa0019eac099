// A policy in front of an app that decodes the path before it parses it (`new URL(decodeURIComponent(req.url), base)`,
// `decodeURI`, `decodeURIComponent(url).split('?')[0]`, `.trim()`) or takes the method from `?_method=` on a POST
// (express's method-override). Found by a hostile probe (2026-12-07); each `fail/` case reached the denied handler
// before its fix: escaped controls and a trailing %20 (the URL parser and trim() drop them), an escaped `?` or `#`
// (the app splits its query there), double-encoded dot segments (one more decode gives `%2e%2e`, which the URL parser
// resolves), and `POST …?_method=DELETE` past a deny on DELETE. Real sidecar, real sockets, one app that routes every
// request under each of those readings and answers which handlers ran.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { rawTlsExchange } from '../helpers/raw-tls.js';
import { startApp, startTestSidecar, type TestApp, type TestSidecar } from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';

const TD = 'example.org';
const SVC = `spiffe://${TD}/ns/shop/sa/api`;
const CALLER = `spiffe://${TD}/ns/shop/sa/web`;

const POLICIES = {
  'deny-list': [
    'apiVersion: meshauth.dev/v1',
    'kind: Policy',
    'rules:',
    '  - name: deny-admin',
    '    action: deny',
    '    to: { paths: ["/admin", "/admin/*"] }',
    '  - name: deny-order-delete',
    '    action: deny',
    '    to: { methods: [DELETE], paths: ["/orders/*"] }',
    '  - name: deny-me',
    '    action: deny',
    '    to: { paths: ["/users/@me"] }',
    '  - name: deny-purge',
    '    action: deny',
    '    to: { paths: ["/v1/items:purge"] }',
    '  - name: allow-all',
    '    action: allow',
    `    from: { ids: ["spiffe://${TD}/*"] }`,
  ].join('\n'),
  'allow-list': [
    'apiVersion: meshauth.dev/v1',
    'kind: Policy',
    'rules:',
    '  - name: allow-public',
    '    action: allow',
    `    from: { ids: ["spiffe://${TD}/*"] }`,
    '    to: { paths: ["/public", "/public/*"] }',
  ].join('\n'),
} as const;
type PolicyName = keyof typeof POLICIES;

// [method, route, handler]; `:x` is one non-empty segment.
const ROUTES: ReadonlyArray<readonly [string, string, string]> = [
  ['GET', '/admin', 'admin'],
  ['GET', '/admin/users', 'admin'],
  ['GET', '/orders/:id', 'orders-get'],
  ['POST', '/orders/:id', 'orders-post'],
  ['PUT', '/orders/:id', 'orders-put'],
  ['DELETE', '/orders/:id', 'orders-delete'],
  ['GET', '/users/@me', 'me'],
  ['POST', '/v1/items:purge', 'purge'],
  ['GET', '/tags/:tag', 'tags'],
  ['GET', '/search', 'search'],
  ['GET', '/public', 'public'],
  ['GET', '/public/:x', 'public'],
  ['GET', '/', 'root'],
];
/** The handlers each policy exists to keep callers from. */
const DENIED: Record<PolicyName, ReadonlySet<string>> = {
  'deny-list': new Set(['admin', 'orders-delete', 'me', 'purge']),
  'allow-list': new Set([
    'admin',
    'orders-get',
    'orders-post',
    'orders-put',
    'orders-delete',
    'me',
    'purge',
    'tags',
    'search',
    'root',
  ]),
};

// How apps found in public code read the request-target. Each throws on what it cannot decode (the app answers 400).
const BASE = 'http://localhost';
const READINGS: Record<string, (url: string) => string> = {
  'decodeURIComponent-then-URL': (url) => new URL(decodeURIComponent(url), BASE).pathname,
  'decodeURI-then-URL': (url) => new URL(decodeURI(url), BASE).pathname,
  'decode-then-split': (url) => decodeURIComponent(url).split('?')[0] as string,
  'split-decode-trim': (url) => decodeURIComponent(url.split('?')[0] as string).trim(),
};

function route(method: string, path: string): string | undefined {
  const parts = path.split('/');
  const hit = ROUTES.find(([m, r]) => {
    const want = r.split('/');
    return (
      m === method &&
      want.length === parts.length &&
      want.every((w, i) => (w.startsWith(':') ? parts[i] !== '' : w === parts[i]))
    );
  });
  return hit?.[2];
}

/** express's method-override('_method'): a POST takes the method its query's first `_method` names. */
function appMethod(method: string, url: string): string {
  const query = url.includes('?') ? url.slice(url.indexOf('?')) : '';
  const override = new URLSearchParams(query).get('_method');
  return method === 'POST' && override !== null ? override.toUpperCase() : method;
}

/** The handlers the request reaches, one per reading of its target (deduplicated). */
function handlersFor(method: string, url: string): string[] {
  const reached = new Set<string>();
  for (const read of Object.values(READINGS)) {
    let path: string;
    try {
      path = read(url);
    } catch {
      continue;
    }
    const handler = route(appMethod(method, url), path);
    if (handler !== undefined) reached.add(handler);
  }
  return [...reached].sort();
}

describe('apps that decode the path before routing, behind a policy', () => {
  let ca: TestCa;
  let caller: TestSvid;
  let dir: string;
  let app: TestApp;
  const sidecars: Partial<Record<PolicyName, TestSidecar>> = {};
  /** Every handler that ran, by policy: checked once more after all cases. */
  const ran: Record<PolicyName, string[]> = { 'deny-list': [], 'allow-list': [] };

  beforeAll(async () => {
    ca = await TestCa.create(TD);
    caller = await ca.issue({ id: CALLER });
    dir = mkdtempSync(join(tmpdir(), 'meshauth-decoding-apps-'));
    app = await startApp((_req, res, seen) => {
      const body = JSON.stringify({ handlers: handlersFor(seen.method, seen.url), url: seen.url });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    for (const name of Object.keys(POLICIES) as PolicyName[]) {
      writeFileSync(join(dir, `${name}.yaml`), POLICIES[name]);
      const config = sidecarConfigFromObject(
        {
          trustDomain: TD,
          ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent', token: '/nonexistent' },
          inbound: { listen: '127.0.0.1:0', app: `127.0.0.1:${app.port}`, policy: join(dir, `${name}.yaml`) },
          outbound: { listen: '127.0.0.1:0' },
          admin: { listen: '127.0.0.1:0' },
        },
        `policy-decoding-apps-${name}`,
      );
      sidecars[name] = await startTestSidecar(ca, SVC, config);
    }
  });
  afterAll(async () => {
    for (const sidecar of Object.values(sidecars)) await sidecar?.sidecar.close(0);
    await app?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function send(policy: PolicyName, method: string, target: string) {
    const sidecar = sidecars[policy] as TestSidecar;
    const reply = await rawTlsExchange(
      sidecar.sidecar.inboundPort,
      caller,
      ca.rootPem,
      `${method} ${target} HTTP/1.1\r\nHost: api.shop\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
    );
    const status = Number(reply.slice(9, 12));
    const body = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)) as { code?: string; handlers?: string[] };
    if (body.handlers !== undefined) ran[policy].push(...body.handlers);
    return { status, code: body.code, handlers: body.handlers };
  }

  const AMBIGUOUS = 'MESHAUTH_ERR_PATH_AMBIGUOUS';
  const FORBIDDEN = 'MESHAUTH_ERR_FORBIDDEN';
  // [name, policy, method, target, status, code]
  const cases: ReadonlyArray<readonly [string, PolicyName, string, string, number, string]> = [
    // F1: escaped controls, and escaped white space at the end.
    ['fail/escaped tab inside', 'deny-list', 'GET', '/ad%09min', 400, AMBIGUOUS],
    ['fail/escaped newline first', 'deny-list', 'GET', '/%0Aadmin', 400, AMBIGUOUS],
    ['fail/escaped newline last', 'deny-list', 'GET', '/admin%0A', 400, AMBIGUOUS],
    ['fail/escaped CR in a param route', 'deny-list', 'GET', '/users/%40m%0De', 400, AMBIGUOUS],
    ['fail/escaped tab in a segment', 'deny-list', 'DELETE', '/orders%09/1', 400, AMBIGUOUS],
    ['fail/escaped tab and colon', 'deny-list', 'POST', '/v1/items%3Apur%09ge', 400, AMBIGUOUS],
    ['fail/escaped DEL', 'deny-list', 'GET', '/admin%7F', 400, AMBIGUOUS],
    ['fail/trailing escaped space', 'deny-list', 'GET', '/admin%20', 400, AMBIGUOUS],
    ['fail/trailing escaped no-break space (trim)', 'deny-list', 'GET', '/admin%C2%A0', 400, AMBIGUOUS],
    // F2: an escaped `?` or `#`, which such an app splits off as its query.
    ['fail/escaped question mark', 'deny-list', 'GET', '/admin%3F', 403, FORBIDDEN],
    ['fail/escaped question mark and a path', 'deny-list', 'GET', '/admin%3Fanything/goes', 403, FORBIDDEN],
    ['fail/escaped hash', 'deny-list', 'GET', '/admin%23', 403, FORBIDDEN],
    ['fail/escaped question mark after a colon', 'deny-list', 'POST', '/v1/items:purge%3F', 403, FORBIDDEN],
    ['fail/escaped at and question mark', 'deny-list', 'GET', '/users/%40me%3F', 403, FORBIDDEN],
    ['fail/escaped space, then the cut', 'deny-list', 'GET', '/admin%20%3F', 403, FORBIDDEN],
    // F3: double-encoded dot segments out of an allowed tree.
    ['fail/%252e%252e out of /public', 'allow-list', 'GET', '/public/%252e%252e/admin', 400, AMBIGUOUS],
    ['fail/upper-case %252E%252E', 'allow-list', 'GET', '/public/%252E%252E/users/@me', 400, AMBIGUOUS],
    ['fail/.%252e', 'allow-list', 'GET', '/public/.%252e/admin/users', 400, AMBIGUOUS],
    ['fail/%25%32%65 twice', 'allow-list', 'GET', '/public/%25%32%65%25%32%65/admin', 400, AMBIGUOUS],
    ['fail/%252e%252e from a deny list', 'deny-list', 'GET', '/public/%252e%252e/admin', 400, AMBIGUOUS],
    [
      'fail/.. cut by an escaped ? (the URL parser resolves it)',
      'allow-list',
      'GET',
      '/public/..%3F/x',
      400,
      AMBIGUOUS,
    ],
    // F4: method-override from the query on a POST.
    ['fail/POST ?_method=DELETE', 'deny-list', 'POST', '/orders/1?_method=DELETE', 403, FORBIDDEN],
    ['fail/POST ?_method=delete', 'deny-list', 'POST', '/orders/1?a=1&_method=delete', 403, FORBIDDEN],
    ['fail/POST ?%5Fmethod=DELETE', 'deny-list', 'POST', '/orders/1?%5Fmethod=DELETE', 403, FORBIDDEN],
    // What stays allowed.
    ['ok/the plain path', 'deny-list', 'GET', '/orders/1', 200, ''],
    ['ok/escaped hash in a tag', 'deny-list', 'GET', '/tags/%23rust', 200, ''],
    ['ok/escaped space inside a segment', 'allow-list', 'GET', '/public/a%20b', 200, ''],
    ['ok/escaped controls in the query', 'deny-list', 'GET', '/search?q=a%0Ab%20', 200, ''],
    ['ok/POST ?_method=PUT', 'deny-list', 'POST', '/orders/1?_method=PUT', 200, ''],
    ['ok/GET ?_method=DELETE (only a POST is overridden)', 'deny-list', 'GET', '/orders/1?_method=DELETE', 200, ''],
  ];

  it.each(cases)('%s: %s %s %s', async (_name, policy, method, target, status, code) => {
    const seen = app.seen.length;
    const reply = await send(policy, method, target);
    expect({ status: reply.status, code: reply.code }).toEqual({ status, code: code === '' ? undefined : code });
    if (status === 200) {
      expect(reply.handlers?.filter((h) => DENIED[policy].has(h))).toEqual([]);
      expect(reply.handlers?.length).toBeGreaterThan(0);
    } else {
      expect(app.seen.length).toBe(seen);
    }
  });

  it('fail/no denied handler ran for any of the cases', () => {
    expect(ran['deny-list'].filter((h) => DENIED['deny-list'].has(h))).toEqual([]);
    expect(ran['allow-list'].filter((h) => DENIED['allow-list'].has(h))).toEqual([]);
  });
});
