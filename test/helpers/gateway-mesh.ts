// A whole edge-to-service mesh for gateway tests, on 127.0.0.1: a TestCa, a local OpenID provider with a password
// form (src/demo/demo-login-provider.ts), the gateway (static SVID, a test server certificate), and two hops
// behind it: web (app + sidecar) → app (app + sidecar). Web's app forwards the passport it received to app, as a
// real service would; each app answers what it saw (user header, passport chain, caller, headers).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import {
  createServer as createHttpsServer,
  type Server as HttpsServer,
  type ServerOptions as HttpsServerOptions,
} from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { CredentialHolder } from '../../src/agent/credential-holder.js';
import { parseUserHeader } from '../../src/authn/end-user.js';
import { actChain, PASSPORT_HEADER } from '../../src/authn/passport/index.js';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { createLoginProvider, type DemoUser, type LoginProvider } from '../../src/demo/demo-login-provider.js';
import { gatewayConfigFromObject, type RunningGateway, startGateway } from '../../src/gateway/index.js';
import { Metrics } from '../../src/telemetry/index.js';
import { freePort } from './free-port.js';
import { type LogLines, logLines } from './log-lines.js';
import { startApp, startTestSidecar, type TestApp, type TestSidecar } from './sidecar-harness.js';
import { TestCa } from './test-ca.js';

export const GATEWAY_CLIENT = { clientId: 'meshauth-gateway', clientSecret: 'gateway-secret-for-tests-only' };
export const API_CLIENT = { clientId: 'reports-job', clientSecret: 'reports-secret-for-tests-only' };
export const ALICE: DemoUser = {
  username: 'alice',
  password: 'wonderland-42',
  claims: { email: 'alice@example.org', groups: ['customers'], roles: ['reader'], tenant: 'acme' },
};

export interface ProviderHandle {
  readonly provider: LoginProvider;
  readonly url: string;
  close(): Promise<void>;
}

export async function startLoginProvider(
  gatewayOrigin: string,
  accessTokenTtlSeconds = 300,
  tls?: { readonly cert: string; readonly key: string },
  users: readonly DemoUser[] = [ALICE],
): Promise<ProviderHandle> {
  // With `tls`, the provider is an https issuer whose certificate only a private CA vouches for (oidc.caFile).
  const server: Server = tls === undefined ? createServer() : createHttpsServer({ cert: tls.cert, key: tls.key });
  // Another loopback address than the gateway's: cookies ignore ports, so the provider's own cookies would
  // otherwise reach the gateway (and, as the app's cookies, the services) in tests.
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
  const url = `${tls === undefined ? 'http' : 'https'}://127.0.0.2:${(server.address() as AddressInfo).port}`;
  const provider = await createLoginProvider({
    issuer: url,
    users,
    clients: [
      {
        ...GATEWAY_CLIENT,
        redirectUris: [`${gatewayOrigin}/.meshauth/callback`],
        postLogoutRedirectUris: [`${gatewayOrigin}/`],
      },
    ],
    apiClients: [API_CLIENT],
    audience: 'shop-api',
    scopes: ['orders:read'],
    accessTokenTtlSeconds,
  });
  server.on('request', provider.handler);
  return {
    provider,
    url,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The caching fields web's app sends on `/cacheable` answers. */
export const CACHEABLE_ANSWER: Readonly<Record<string, string>> = {
  'cache-control': 'public, max-age=3600',
  'cdn-cache-control': 'public, max-age=3600',
  'cloudflare-cdn-cache-control': 'max-age=3600',
  'surrogate-control': 'max-age=3600',
  'edge-control': 'cache-maxage=3600s',
  'x-accel-expires': '3600',
  expires: 'Thu, 01 Dec 2099 16:00:00 GMT',
  pragma: 'public',
};

export interface GatewayMeshOptions {
  /** Extra or replacing keys of the gateway config document. */
  readonly gateway?: (base: Record<string, unknown>, files: MeshFiles) => Record<string, unknown>;
  readonly accessTokenTtlSeconds?: number;
  /** web's sidecar passes the Authorization header on (inbound.endUser.forwardOriginalToken). */
  readonly webForwardsToken?: boolean;
  /** Serve the provider over https with a certificate from the test CA (for oidc.caFile). */
  readonly providerTls?: boolean;
  /** The provider's users (default [ALICE]). */
  readonly users?: readonly DemoUser[];
  /** The gateway's clock (sessions' idle and absolute timeouts, renewal); the real one by default. */
  readonly now?: () => Date;
}

export interface MeshFiles {
  readonly dir: string;
  /** The test CA's root (the gateway's server certificate and, with providerTls, the provider's). */
  readonly caPem: string;
  readonly sessionKeys: readonly string[];
  write(name: string, text: string): string;
}

export interface GatewayMesh {
  readonly ca: TestCa;
  readonly origin: string;
  readonly provider: ProviderHandle;
  readonly gateway: RunningGateway;
  readonly metrics: Metrics;
  readonly log: LogLines;
  readonly files: MeshFiles;
  readonly gatewayId: string;
  readonly webId: string;
  readonly appId: string;
  readonly web: TestSidecar;
  readonly app: TestSidecar;
  readonly webApp: TestApp;
  readonly appApp: TestApp;
  readonly serverCertPem: string;
  close(): Promise<void>;
}

export interface HopSeen {
  readonly service: string;
  readonly path: string;
  readonly user: Record<string, unknown> | undefined;
  readonly chain: string[];
  /** The origin passport the request carried (the last JWS of the passport header). */
  readonly origin: string | undefined;
  /** The link the request carried (the first JWS of a two-part passport header). */
  readonly link: string | undefined;
  readonly caller: string | undefined;
  readonly cookie: string | undefined;
  readonly authorization: string | undefined;
  readonly forwardedHost: string | undefined;
  readonly host: string | undefined;
  /** The request's `x-probe` header, for tests of what reaches a service. */
  readonly probe: string | undefined;
  readonly next?: HopSeen;
}

function hopOf(service: string, req: IncomingMessage): HopSeen {
  const xfcc = req.headers['x-forwarded-client-cert'];
  const userHeader = req.headers['x-meshauth-user'];
  const passport = req.headers[PASSPORT_HEADER];
  let chain: string[] = [];
  if (typeof passport === 'string' && passport.includes(',')) {
    const link = JSON.parse(
      Buffer.from((passport.split(',')[0] as string).split('.')[1] as string, 'base64url').toString(),
    );
    chain = actChain(link.act);
  }
  return {
    service,
    path: req.url ?? '',
    user: typeof userHeader === 'string' ? parseUserHeader(userHeader) : undefined,
    chain,
    origin: typeof passport === 'string' ? passport.split(',').at(-1) : undefined,
    link: typeof passport === 'string' && passport.includes(',') ? passport.split(',')[0] : undefined,
    caller: typeof xfcc === 'string' ? /URI=([^;,]+)/.exec(xfcc)?.[1] : undefined,
    cookie: req.headers.cookie,
    authorization: req.headers.authorization,
    forwardedHost: req.headers['x-forwarded-host'] as string | undefined,
    host: req.headers.host,
    probe: req.headers['x-probe'] as string | undefined,
  };
}

export async function startGatewayMesh(options: GatewayMeshOptions = {}): Promise<GatewayMesh> {
  const closers: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const fn of closers.splice(0).reverse()) await fn().catch(() => undefined);
  };
  try {
    const ca = await TestCa.create();
    const dir = mkdtempSync(join(tmpdir(), 'meshauth-gw-'));
    closers.push(async () => rmSync(dir, { recursive: true, force: true }));
    const write = (name: string, text: string) => {
      const file = join(dir, name);
      writeFileSync(file, text, { mode: 0o600 });
      return file;
    };
    const sessionKeys = [
      write('session-new.key', `${'a'.repeat(20)}new-session-secret-0123456789`),
      write('session-old.key', `${'b'.repeat(20)}old-session-secret-0123456789`),
    ];
    const files: MeshFiles = { dir, caPem: ca.rootPem, sessionKeys, write };
    const port = await freePort();
    const origin = `https://127.0.0.1:${port}`;
    const providerCert =
      options.providerTls === true
        ? await ca.issue({ id: ca.idFor('/ns/idp/sa/provider'), ipAddresses: ['127.0.0.2'] })
        : undefined;
    const provider = await startLoginProvider(
      origin,
      options.accessTokenTtlSeconds,
      providerCert === undefined ? undefined : { cert: providerCert.chainPem, key: providerCert.keyPem },
      options.users,
    );
    closers.push(() => provider.close());

    const gatewayId = ca.idFor('/ns/edge/sa/gateway');
    const webId = ca.idFor('/ns/shop/sa/web');
    const appId = ca.idFor('/ns/shop/sa/app');
    const endUser = {
      issuers: [{ issuer: provider.url, audiences: ['shop-api'], algorithms: ['ES256'] }],
      vouchers: [gatewayId],
      claims: ['email', 'groups', 'scope', 'tenant'],
    };
    const sidecarConfig = (
      appPort: number,
      routes: Record<string, { address: string; ids: string[] }>,
      forwardOriginalToken = false,
    ) =>
      sidecarConfigFromObject(
        {
          trustDomain: 'example.org',
          ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent/bundle.pem', token: '/nonexistent/token' },
          inbound: {
            listen: '127.0.0.1:0',
            app: `127.0.0.1:${appPort}`,
            endUser: { ...endUser, forwardOriginalToken },
          },
          outbound: { listen: '127.0.0.1:0', routes },
          admin: { listen: '127.0.0.1:0' },
          drainTimeout: '1s',
        },
        'test',
      );

    const appApp = await startApp((req, res) => {
      const body = JSON.stringify(hopOf('app', req));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    closers.push(() => appApp.close());
    const app = await startTestSidecar(ca, appId, sidecarConfig(appApp.port, {}));
    closers.push(() => app.sidecar.close(0));

    let webOutbound = 0;
    const webApp = await startApp((req, res) => {
      const seen = hopOf('web', req);
      const passport = req.headers[PASSPORT_HEADER];
      request(`http://127.0.0.1:${webOutbound}${req.url ?? '/'}`, {
        headers: { host: 'app.shop', ...(typeof passport === 'string' ? { [PASSPORT_HEADER]: passport } : {}) },
      })
        .then(async (answer) => {
          const text = await answer.body.text();
          let next: unknown;
          try {
            next = JSON.parse(text);
          } catch {
            next = { error: text, status: answer.statusCode };
          }
          const body = JSON.stringify({ ...seen, next });
          res.writeHead(200, {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            // A service trying to plant the gateway's session (/fixation) must be stopped at the gateway.
            'set-cookie': (req.url ?? '').includes('fixation')
              ? ['app-pref=dark; Path=/; Secure', '__Host-meshauth=planted; Path=/; Secure; HttpOnly']
              : 'app-pref=dark; Path=/; Secure',
            // A page a shared cache may keep (/cacheable): what a service says of its static assets, to browsers
            // and to the CDNs and proxy caches in front (targeted fields, HTTP/1.0 fields).
            ...((req.url ?? '').includes('cacheable') ? CACHEABLE_ANSWER : {}),
          });
          res.end(body);
        })
        .catch((error: Error) => {
          res.writeHead(502).end(error.message);
        });
    });
    closers.push(() => webApp.close());
    const web = await startTestSidecar(
      ca,
      webId,
      sidecarConfig(
        webApp.port,
        { 'app.shop': { address: `127.0.0.1:${app.sidecar.inboundPort}`, ids: [appId] } },
        options.webForwardsToken === true,
      ),
    );
    webOutbound = web.sidecar.outboundPort;
    closers.push(() => web.sidecar.close(0));

    const server = await ca.issue({
      id: ca.idFor('/ns/edge/sa/public'),
      ipAddresses: ['127.0.0.1'],
      dnsNames: ['localhost'],
    });
    const cert = write('gateway.crt', server.chainPem);
    const key = write('gateway.key', server.keyPem);
    const secret = write('client.secret', GATEWAY_CLIENT.clientSecret);
    const base: Record<string, unknown> = {
      trustDomain: 'example.org',
      ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent/bundle.pem', token: '/nonexistent/token' },
      listen: `127.0.0.1:${port}`,
      tls: { cert, key },
      session: { keys: sessionKeys, idleTimeout: '30m', absoluteTimeout: '12h' },
      oidc: {
        issuer: provider.url,
        clientId: GATEWAY_CLIENT.clientId,
        clientSecretFile: secret,
        redirectUri: `${origin}/.meshauth/callback`,
        scopes: ['openid', 'profile', 'email', 'offline_access'],
        claims: ['email', 'groups', 'roles', 'tenant'],
      },
      apiIssuers: [{ issuer: provider.url, audiences: ['shop-api'], algorithms: ['ES256'] }],
      routes: [
        {
          name: 'web',
          match: { host: '127.0.0.1', pathPrefix: '/' },
          to: { address: `127.0.0.1:${web.sidecar.inboundPort}`, ids: [webId] },
          login: 'required',
        },
      ],
      admin: { listen: '127.0.0.1:0' },
      drainTimeout: '1s',
    };
    const document = options.gateway === undefined ? base : options.gateway(base, files);
    const config = gatewayConfigFromObject(document, 'gateway-test.yaml');
    const svid = await ca.issue({ id: gatewayId });
    const holder = new CredentialHolder({ svid: svid.svid, bundle: ca.bundle });
    const metrics = new Metrics();
    const log = logLines('gateway', process.env.GATEWAY_TEST_LOG === undefined ? 'info' : process.env.GATEWAY_TEST_LOG);
    const gateway = await startGateway(config, {
      logger: log.logger,
      metrics,
      holder,
      certWatchIntervalMs: 100,
      ...(options.now === undefined ? {} : { now: options.now }),
    });
    closers.push(() => gateway.close(0));
    return {
      ca,
      origin,
      provider,
      gateway,
      metrics,
      log,
      files,
      gatewayId,
      webId,
      appId,
      web,
      app,
      webApp,
      appApp,
      serverCertPem: server.chainPem,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** The SPIFFE ID of the peer behind startGatewayWithHttp1Peer's `/legacy` route. */
export const HTTP1_PEER_ID = 'spiffe://example.org/ns/legacy/sa/h1';

export interface GatewayWithHttp1Peer {
  readonly mesh: GatewayMesh;
  /** The peer: HTTPS with its own SVID, client certificates required, ALPN `http/1.1` only. */
  readonly peer: HttpsServer;
  close(): Promise<void>;
}

/**
 * A gateway mesh with one more route, `login: none` on `/legacy`, to a peer that speaks only HTTP/1.1 (not a
 * meshauth sidecar: a legacy mTLS service), answering with `handler`. `options` go to the peer's HTTPS server.
 * `listenHost` replaces the gateway's 127.0.0.1 (`[::ffff:127.0.0.1]`: an IPv6 socket on loopback).
 */
export async function startGatewayWithHttp1Peer(
  handler: RequestListener,
  options: HttpsServerOptions = {},
  listenHost?: string,
): Promise<GatewayWithHttp1Peer> {
  const peerPort = await freePort();
  const mesh = await startGatewayMesh({
    gateway: (base) => ({
      ...base,
      ...(listenHost === undefined ? {} : { listen: (base.listen as string).replace('127.0.0.1', listenHost) }),
      routes: [
        {
          name: 'legacy',
          match: { host: '127.0.0.1', pathPrefix: '/legacy' },
          to: { address: `127.0.0.1:${peerPort}`, ids: [HTTP1_PEER_ID] },
          login: 'none',
        },
        ...(base.routes as unknown[]),
      ],
    }),
  });
  const svid = await mesh.ca.issue({ id: HTTP1_PEER_ID });
  const peer = createHttpsServer(
    {
      cert: svid.chainPem,
      key: svid.keyPem,
      ca: [mesh.ca.rootPem],
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['http/1.1'],
      ...options,
    },
    handler,
  );
  await new Promise<void>((resolve) => peer.listen(peerPort, '127.0.0.1', resolve));
  return {
    mesh,
    peer,
    close: async () => {
      // The gateway first: a connection its HTTP/1.1 client dialed for a request the browser dropped meanwhile is kept
      // for the next request, and one whose handshake ended after closeAllConnections would hold peer.close() open.
      await mesh.close();
      peer.closeAllConnections();
      await new Promise<void>((resolve) => peer.close(() => resolve()));
    },
  };
}

/** `meshauth_gateway_logins_total{result}` of the mesh's gateway, as a number. */
export async function gatewayLogins(mesh: GatewayMesh, result: string): Promise<number> {
  return (await mesh.metrics.gatewayLogins.get()).values.find((v) => v.labels.result === result)?.value ?? 0;
}
