// Issue 5's external listener: API clients outside the mesh reach a service over server-only TLS with a
// client-credentials token from a real OpenID issuer (oidc-provider). The sidecar mints the origin passport, strips
// spoofed identity headers, refuses passports from outside, applies the policy without an mTLS peer, and the app
// can forward the passport to another sidecar that trusts this one as a voucher. Real sockets, real TLS.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseUserHeader } from '../../src/authn/index.js';
import { actChain } from '../../src/authn/passport/index.js';
import { type SidecarConfig, sidecarConfigFromObject } from '../../src/config/index.js';
import { isMeshauthError } from '../../src/errors/index.js';
import { startSidecar } from '../../src/sidecar/index.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { type OidcIssuer, startOidcIssuer } from '../helpers/oidc-issuer.js';
import {
  available,
  echoApp,
  runCommand,
  startApp,
  startTestSidecar,
  type TestApp,
  type TestSidecar,
} from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';
import { eventually, waitFor } from '../helpers/wait.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/edge/sa/api`;
const GUARDED = `spiffe://${TD}/ns/edge/sa/guarded`;
const ORDERS = `spiffe://${TD}/ns/shop/sa/orders`;
const CLIENTS = [
  { clientId: 'reporting', clientSecret: 'reporting-secret' },
  { clientId: 'intruder', clientSecret: 'intruder-secret' },
];

let ca: TestCa;
let idp: OidcIssuer;
let dir: string;
let certFile: string;
let keyFile: string;
let rootFile: string;
const closers: Array<() => Promise<void>> = [];
let api: TestSidecar; // external listener, no policy
let guarded: TestSidecar; // external listener + policy
let orders: TestSidecar; // mesh-only, trusts `api` as a voucher
let appApi: TestApp;
let appGuarded: TestApp;
let appOrders: TestApp;
let h1: Agent;

/** Echoes, except `/chain/…`: calls orders.shop through the sidecar's outbound with the passport it received. */
function apiApp(req: IncomingMessage, res: ServerResponse, seen: Parameters<typeof echoApp>[2]): void {
  if (!seen.url.startsWith('/chain/')) {
    echoApp(req, res, seen);
    return;
  }
  const passport = req.headers['x-meshauth-passport'];
  request(`http://127.0.0.1:${api.sidecar.outboundPort}${seen.url.slice('/chain'.length)}`, {
    headers: { host: 'orders.shop', ...(typeof passport === 'string' ? { 'x-meshauth-passport': passport } : {}) },
  }).then(
    async (downstream) => {
      const body = await downstream.body.text();
      res.writeHead(downstream.statusCode, { 'content-type': 'application/json' }).end(body);
    },
    (error: Error) => res.writeHead(500).end(error.message),
  );
}

function config(appPort: number, extra: { policy?: string; routes?: Record<string, unknown>; external: boolean }) {
  return sidecarConfigFromObject(
    {
      trustDomain: TD,
      ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent', token: '/nonexistent' },
      inbound: {
        listen: '127.0.0.1:0',
        app: `127.0.0.1:${appPort}`,
        ...(extra.policy === undefined ? {} : { policy: extra.policy }),
        endUser: {
          issuers: [{ issuer: idp.issuer, audiences: [idp.audience], algorithms: ['ES256'] }],
          vouchers: [API],
          claims: ['scope', 'client_id'],
        },
        ...(extra.external ? { external: { listen: '127.0.0.1:0', cert: certFile, key: keyFile } } : {}),
      },
      outbound: { listen: '127.0.0.1:0', routes: extra.routes ?? {} },
      admin: { listen: '127.0.0.1:0' },
    },
    'sidecar-external-test',
  );
}

beforeAll(async () => {
  ca = await TestCa.create(TD);
  idp = await startOidcIssuer({ audience: 'api', scopes: ['orders:read', 'orders:write'], clients: CLIENTS });
  closers.push(() => idp.close());
  dir = mkdtempSync(join(tmpdir(), 'meshauth-external-'));
  closers.push(async () => rmSync(dir, { recursive: true, force: true }));
  // The public listener's certificate: a server certificate for the name clients use (here 127.0.0.1 and
  // localhost), from the same test CA only for convenience; clients verify it by host name, not by SPIFFE ID.
  const server = await ca.issue({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  certFile = join(dir, 'api.crt');
  keyFile = join(dir, 'api.key');
  rootFile = join(dir, 'root.pem');
  writeFileSync(certFile, server.chainPem);
  writeFileSync(keyFile, server.keyPem, { mode: 0o600 });
  writeFileSync(rootFile, ca.rootPem);
  const policy = join(dir, 'policy.yaml');
  writeFileSync(
    policy,
    [
      'apiVersion: meshauth.dev/v1',
      'kind: Policy',
      'exposeRuleNames: true',
      'rules:',
      '  - name: mesh-peers', // never matches an external request: it has no mTLS peer
      '    action: allow',
      `    from: { trustDomains: ["${TD}"] }`,
      '  - name: reporting-read',
      '    action: allow',
      '    to: { methods: [GET], paths: ["/orders/*"] }',
      '    when: { user: { client_id: [reporting], scope: ["orders:read"] } }',
    ].join('\n'),
  );

  appOrders = await startApp();
  closers.push(() => appOrders.close());
  orders = await startTestSidecar(ca, ORDERS, config(appOrders.port, { external: false }));
  closers.push(() => orders.sidecar.close(0));

  appApi = await startApp(apiApp);
  closers.push(() => appApi.close());
  api = await startTestSidecar(
    ca,
    API,
    config(appApi.port, {
      external: true,
      routes: { 'orders.shop': { address: `127.0.0.1:${orders.sidecar.inboundPort}`, ids: [ORDERS] } },
    }),
  );
  closers.push(() => api.sidecar.close(0));

  appGuarded = await startApp();
  closers.push(() => appGuarded.close());
  guarded = await startTestSidecar(ca, GUARDED, config(appGuarded.port, { external: true, policy }));
  closers.push(() => guarded.sidecar.close(0));

  h1 = new Agent({ connect: { ca: ca.rootPem } });
  closers.push(() => h1.close());
});

afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
});

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

async function call(
  sidecar: TestSidecar,
  path: string,
  options: { token?: string; headers?: Record<string, string>; http2?: boolean } = {},
): Promise<Answer> {
  const url = `https://127.0.0.1:${sidecar.sidecar.externalPort}`;
  const headers = {
    ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
    ...options.headers,
  };
  if (options.http2) return callH2(url, path, headers);
  const response = await request(`${url}${path}`, { dispatcher: h1, headers });
  return { status: response.statusCode, headers: response.headers, body: await response.body.text() };
}

/** node:http2 (not undici) so the request surely travels as h2 (ALPN), one session per call. */
function callH2(url: string, path: string, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(url, { ca: ca.rootPem });
    session.once('error', reject);
    const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
    const stream = session.request({ ':path': path, ':method': 'GET', ...lower });
    const chunks: Buffer[] = [];
    let head: Record<string, string | string[] | undefined> = {};
    stream.on('response', (h) => {
      head = h as Record<string, string | string[] | undefined>;
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('end', () => {
      session.close();
      resolve({ status: Number(head[':status']), headers: head, body: Buffer.concat(chunks).toString() });
    });
    stream.once('error', (error) => {
      session.destroy();
      reject(error);
    });
    stream.end();
  });
}

function token(clientId = 'reporting', scope = 'orders:read'): Promise<string> {
  return idp.getToken({ clientId, scope });
}

function linkChain(passport: string): string[] {
  const [link] = passport.split(',');
  const claims = JSON.parse(Buffer.from((link as string).split('.')[1] as string, 'base64url').toString());
  return actChain(claims.act);
}

describe('external listener: bearer-token clients without a mesh certificate', () => {
  it('ok/listens only when configured', () => {
    expect(api.sidecar.externalPort).toBeGreaterThan(0);
    expect(orders.sidecar.externalPort).toBeUndefined();
  });

  it.each([
    ['ok/HTTP/1.1', false],
    ['ok/HTTP/2', true],
  ])(
    '%s: a client-credentials token → 200; the app sees the client, a passport, no token, no XFCC',
    async (_n, http2) => {
      const before = appApi.seen.length;
      const result = await call(api, '/orders/1?x=1', { token: await token(), http2 });
      expect(result.status, result.body).toBe(200);
      const seen = appApi.seen[before];
      expect(seen?.url).toBe('/orders/1?x=1');
      const headers = seen?.headers ?? {};
      expect(headers.authorization).toBeUndefined();
      expect(headers['x-forwarded-client-cert']).toBeUndefined();
      expect(parseUserHeader(headers['x-meshauth-user'] as string)).toMatchObject({
        sub: 'reporting',
        client_id: 'reporting',
        iss: idp.issuer,
        scope: 'orders:read',
      });
      expect(typeof headers['x-meshauth-passport']).toBe('string');
      expect(linkChain(headers['x-meshauth-passport'] as string)).toEqual([API]); // the origin, minted here
    },
  );

  it('fail/no token → 401 Bearer (MESHAUTH_ERR_TOKEN_MISSING), even though endUser.required is false', async () => {
    const before = appApi.seen.length;
    const result = await call(api, '/orders/1');
    expect(result.status).toBe(401);
    expect(result.headers['www-authenticate']).toBe('Bearer realm="meshauth"');
    expect(JSON.parse(result.body)).toEqual({ code: 'MESHAUTH_ERR_TOKEN_MISSING', message: 'end-user token required' });
    expect(appApi.seen.length).toBe(before);
  });

  it('fail/a refusal on a connection that never had a request served closes it (Connection: close)', async () => {
    const fresh = new Agent({ connect: { ca: ca.rootPem } });
    try {
      const refused = await request(`https://127.0.0.1:${api.sidecar.externalPort}/orders/1`, { dispatcher: fresh });
      await refused.body.text();
      expect(refused.statusCode).toBe(401);
      expect(refused.headers.connection).toBe('close');
    } finally {
      await fresh.close();
    }
  });

  it.each([
    ['fail/garbage token', async () => 'not.a.token'],
    ['fail/token for another audience', () => idp.getToken({ clientId: 'reporting', resource: 'urn:other' })],
  ])('%s → 401 invalid_token', async (_name, makeToken) => {
    const result = await call(api, '/orders/1', { token: await makeToken() });
    expect(result.status).toBe(401);
    expect(result.headers['www-authenticate']).toContain('error="invalid_token"');
    expect(JSON.parse(result.body).code).toBe('MESHAUTH_ERR_TOKEN_INVALID');
  });

  it('fail/a passport from outside is refused (401 MESHAUTH_ERR_PASSPORT_INVALID), even with a valid token', async () => {
    await call(api, '/orders/1', { token: await token() });
    const captured = appApi.seen.at(-1)?.headers['x-meshauth-passport'] as string;
    const before = appApi.seen.length;
    for (const http2 of [false, true]) {
      const result = await call(api, '/orders/1', {
        token: await token(),
        headers: { 'X-MeshAuth-Passport': captured },
        http2,
      });
      expect(result.status).toBe(401);
      expect(JSON.parse(result.body).code).toBe('MESHAUTH_ERR_PASSPORT_INVALID');
    }
    expect(appApi.seen.length).toBe(before);
  });

  it('fail/spoofed identity headers never reach the app; the sidecar sets its own', async () => {
    const forged = Buffer.from(JSON.stringify({ sub: 'admin', iss: 'https://evil' })).toString('base64url');
    const result = await call(api, '/orders/2', {
      token: await token(),
      headers: {
        'x-forwarded-client-cert': `By=${API};Hash=00;URI=spiffe://${TD}/ns/admin/sa/root`,
        'X-Meshauth-User': forged,
        'x-meshauth-chain': 'forged',
      },
    });
    expect(result.status).toBe(200);
    const headers = appApi.seen.at(-1)?.headers ?? {};
    expect(headers['x-forwarded-client-cert']).toBeUndefined();
    expect(headers['x-meshauth-chain']).toBeUndefined();
    expect(parseUserHeader(headers['x-meshauth-user'] as string)?.sub).toBe('reporting');
  });

  it('ok/policy: when.user.client_id + scope allow the reporting client; `from` rules never match', async () => {
    const ok = await call(guarded, '/orders/3', { token: await token() });
    expect(ok.status, ok.body).toBe(200);
    expect(parseUserHeader(appGuarded.seen.at(-1)?.headers['x-meshauth-user'] as string)?.client_id).toBe('reporting');
  });

  it.each([
    ['fail/another client → 403 default-deny', 'intruder', 'orders:read', '/orders/3'],
    ['fail/the right client without the scope → 403', 'reporting', 'orders:write', '/orders/3'],
    ['fail/the right client on another path → 403', 'reporting', 'orders:read', '/admin'],
  ])('%s', async (_name, clientId, scope, path) => {
    const before = appGuarded.seen.length;
    const result = await call(guarded, path, { token: await token(clientId, scope) });
    expect(result.status).toBe(403);
    expect(JSON.parse(result.body)).toMatchObject({ code: 'MESHAUTH_ERR_FORBIDDEN', rule: 'default-deny' });
    expect(appGuarded.seen.length).toBe(before);
  });

  it('ok/the app forwards the passport through its outbound: orders sees the client and the chain [api]', async () => {
    const before = appOrders.seen.length;
    const result = await call(api, '/chain/orders/9', { token: await token() });
    expect(result.status, result.body).toBe(200);
    const headers = appOrders.seen[before]?.headers ?? {};
    expect(headers['x-forwarded-client-cert']).toContain(`URI=${API}`);
    expect(headers.authorization).toBeUndefined();
    expect(parseUserHeader(headers['x-meshauth-user'] as string)).toMatchObject({
      sub: 'reporting',
      client_id: 'reporting',
    });
    expect(linkChain(headers['x-meshauth-passport'] as string)).toEqual([API]);
  });

  it('ok/metrics: direction="external", empty peer_id; rejections counted by code', async () => {
    const requests = await api.metrics.registry.getSingleMetricAsString('meshauth_requests_total');
    expect(requests).toContain('direction="external",peer_id="",code="200"');
    expect(requests).toContain('direction="external",peer_id="",code="401"');
    const rejected = await api.metrics.registry.getSingleMetricAsString('meshauth_requests_rejected_total');
    expect(rejected).toContain('direction="external",code="MESHAUTH_ERR_PASSPORT_INVALID"');
    expect(rejected).toContain('direction="external",code="MESHAUTH_ERR_TOKEN_MISSING"');
  });

  it('fail/TLS 1.2 is refused by default and counted', async () => {
    const outcome = await new Promise<string>((resolve) => {
      const socket = tlsConnect({
        host: '127.0.0.1',
        port: api.sidecar.externalPort as number,
        ca: ca.rootPem,
        maxVersion: 'TLSv1.2',
      });
      socket.once('secureConnect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.once('error', (error: Error & { code?: string }) => resolve(error.code ?? 'error'));
    });
    expect(outcome).not.toBe('connected');
    // The server-side counter is incremented on its own event; poll a bounded number of times.
    const failures = await waitFor(
      'an external handshake failure counted',
      async () => {
        const text = await api.metrics.registry.getSingleMetricAsString('meshauth_tls_handshake_failures_total');
        return text.includes('direction="external"') ? text : undefined;
      },
      1_000,
      25,
    );
    expect(failures).toContain('direction="external",reason="protocol_version"');
  });

  it.skipIf(!available('curl'))('ok/curl --cacert <root> -H "Authorization: Bearer …" works', async () => {
    const result = await runCommand('curl', [
      '-sS',
      '--cacert',
      rootFile,
      '-H',
      `Authorization: Bearer ${await token()}`,
      '-w',
      '\n%{http_code} %{http_version}',
      `https://127.0.0.1:${api.sidecar.externalPort}/orders/curl`,
    ]);
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines.at(-1)).toMatch(/^200 /);
    expect(JSON.parse(lines.slice(0, -1).join('\n'))).toMatchObject({ url: '/orders/curl' });
  });
});

describe("external listener: a client flooding requests cannot evict another user's passport", () => {
  it("fail/1,200 requests with one client's tokens evict only its oldest passports; the other user's stays usable", async () => {
    /** The passport api's app received for a request made with `bearer`. */
    const passportFor = async (bearer: string): Promise<string> => {
      const before = appApi.seen.length;
      expect((await call(api, '/orders/1', { token: bearer })).status).toBe(200);
      return appApi.seen[before]?.headers['x-meshauth-passport'] as string;
    };
    /** What the app gets when it forwards `passport` to orders.shop through its own outbound. */
    const forward = async (passport: string) => {
      const response = await request(`http://127.0.0.1:${api.sidecar.outboundPort}/orders/1`, {
        headers: { host: 'orders.shop', 'x-meshauth-passport': passport },
      });
      return { status: response.statusCode, body: await response.body.text() };
    };
    const victim = await passportFor(await token());
    const flooder = await token('intruder');
    const first = await passportFor(flooder);
    // More than one user's bound (1,000), 50 at a time on keep-alive connections, each with a token of its own: the
    // requests of one token share one origin passport, so only new tokens make new passports.
    for (let batch = 0; batch < 24; batch++) {
      const tokens = await Promise.all(Array.from({ length: 50 }, () => token('intruder')));
      await Promise.all(
        tokens.map((bearer) => call(api, '/orders/1', { token: bearer }).then((r) => expect(r.status).toBe(200))),
      );
    }
    const victimForward = await forward(victim);
    expect(victimForward.status, victimForward.body).toBe(200);
    expect(parseUserHeader(appOrders.seen.at(-1)?.headers['x-meshauth-user'] as string)).toMatchObject({
      sub: 'reporting',
    });
    // The flooder's own oldest passport made way for its newer ones.
    const evicted = await forward(first);
    expect(evicted.status).toBe(401);
    expect(JSON.parse(evicted.body)).toMatchObject({ code: 'MESHAUTH_ERR_PASSPORT_INVALID' });
  });
});

describe('external listener: drain', () => {
  it('ok/close() lets an in-flight external request finish, then the port refuses connections', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slowApp = await startApp((req, res, seen) => {
      void held.then(() => echoApp(req, res, seen));
    });
    closers.push(() => slowApp.close());
    const slow = await startTestSidecar(ca, API, config(slowApp.port, { external: true }));
    closers.push(() => slow.sidecar.close(0));
    const inFlight = call(slow, '/orders/slow', { token: await token() });
    await eventually(() => slowApp.seen.length > 0, 2_000);
    expect(slowApp.seen.length).toBe(1);
    const closing = slow.sidecar.close(10_000);
    release();
    expect((await inFlight).status).toBe(200);
    await closing;
    await expect(call(slow, '/orders/after', { token: await token() })).rejects.toThrow();
  });
});

describe('external listener: start-up checks', () => {
  async function startWith(cert: string, key: string): Promise<unknown> {
    const next: SidecarConfig = sidecarConfigFromObject(
      {
        trustDomain: TD,
        ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent', token: '/nonexistent' },
        inbound: {
          listen: '127.0.0.1:0',
          app: '127.0.0.1:1',
          endUser: { issuers: [{ issuer: idp.issuer, audiences: [idp.audience], algorithms: ['ES256'] }] },
          external: { listen: '127.0.0.1:0', cert, key },
        },
        outbound: { listen: '127.0.0.1:0' },
        admin: { listen: '127.0.0.1:0' },
      },
      'sidecar-external-startup',
    );
    try {
      const running = await startSidecar(next, { logger: silentLogger(), metrics: new Metrics(), agent: false });
      await running.close(0);
      return undefined;
    } catch (error) {
      return error;
    }
  }

  it('fail/a missing certificate file fails the start naming inbound.external.cert', async () => {
    const error = await startWith(join(dir, 'missing.crt'), keyFile);
    expect(isMeshauthError(error, 'MESHAUTH_ERR_FILE_UNREADABLE')).toBe(true);
    expect((error as Error).message).toMatch(
      /inbound\.external\.cert: certificate file .*missing\.crt: cannot be read \(ENOENT\)/,
    );
  });

  // A directory printed a bare EISDIR, and a FIFO at the path blocked the start: read bounded, regular files only.
  it('fail/a directory as inbound.external.key fails the start: "key file <path>: not a regular file"', async () => {
    const keyDir = join(dir, 'external-key.d');
    mkdirSync(keyDir, { recursive: true });
    const error = await startWith(certFile, keyDir);
    expect(isMeshauthError(error, 'MESHAUTH_ERR_FILE_UNREADABLE')).toBe(true);
    expect((error as Error).message).toMatch(/inbound\.external\.key: key file .*external-key\.d: not a regular file$/);
  });

  it('fail/a key that does not belong to the certificate fails the start naming inbound.external.key', async () => {
    const other = await ca.issue({ dnsNames: ['localhost'] });
    const otherKey = join(dir, 'other.key');
    writeFileSync(otherKey, other.keyPem);
    const error = await startWith(certFile, otherKey);
    expect(isMeshauthError(error, 'MESHAUTH_ERR_CONFIG_INVALID')).toBe(true);
    expect((error as Error).message).toMatch(/inbound\.external\.key: .* is not the key of the certificate/);
  });
});

describe('the app pool share on the external listener', () => {
  let shared: TestSidecar;
  let appShared: Server;
  let uploadsStarted = 0;

  beforeAll(async () => {
    // Uploads are answered once their body ends; anything else at once.
    appShared = createServer((req, res) => {
      if (req.url === '/upload') uploadsStarted += 1;
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    await new Promise<void>((resolve) => appShared.listen(0, '127.0.0.1', resolve));
    // Four app connections: one caller may hold three of them.
    shared = await startTestSidecar(ca, API, config((appShared.address() as AddressInfo).port, { external: true }), {
      inboundLimits: { appConnections: 4 },
    });
  });

  afterAll(async () => {
    await shared?.sidecar.close(0);
    appShared?.closeAllConnections();
    await new Promise((resolve) => appShared?.close(resolve));
  });

  it('ok/one client with unfinished uploads on every place of its share, under two tokens, leaves another user served', async () => {
    const intruder = await idp.getToken({ clientId: 'intruder', scope: 'orders:read' });
    const session = http2Connect(`https://127.0.0.1:${shared.sidecar.externalPort}`, { ca: ca.rootPem });
    session.on('error', () => undefined);
    // A second token of the same client that differs in a claim: still the same caller.
    const again = await idp.getToken({ clientId: 'intruder', scope: 'orders:write' });
    try {
      const uploads = [intruder, intruder, intruder, again].map((bearer) => {
        const stream = session.request({
          ':method': 'POST',
          ':path': '/upload',
          authorization: `Bearer ${bearer}`,
          'content-type': 'application/octet-stream',
        });
        stream.on('error', () => undefined);
        stream.write('x');
        return stream;
      });
      expect(await eventually(() => uploadsStarted === 3, 10_000), 'three uploads at the app').toBe(true);
      // Before: every external caller counted as one peer, so this waited for an upload to end.
      const answer = await call(shared, '/orders/1', { token: await token('reporting', 'orders:read') });
      expect(answer.status).toBe(200);
      expect(uploads.every((stream) => !stream.closed)).toBe(true);
    } finally {
      session.destroy();
    }
  });
});
