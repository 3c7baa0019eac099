// The demo's edge: a local OpenID provider with a password form (demo-login-provider.ts) on http://localhost and
// `meshauth gateway` on https://127.0.0.1 in front of web. The gateway bootstraps its SVID from the demo CA with a
// join token like every sidecar, signs browsers in, and vouches for them with an origin passport.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { createJoinToken } from '../ca/index.js';
import { gatewayConfigFromObject, type RunningGateway, startGateway } from '../gateway/index.js';
import { type Logger, Metrics } from '../telemetry/index.js';
import { listenOnLoopback } from './demo-apps.js';
import { createLoginProvider, type LoginProvider } from './demo-login-provider.js';

export const GATEWAY_ID = 'spiffe://example.org/ns/edge/sa/gateway';
export const DEMO_USER = { username: 'alice', email: 'alice@example.org' };
const GATEWAY_CLIENT_ID = 'meshauth-gateway';

export interface DemoGateway {
  readonly url: string;
  readonly providerUrl: string;
  readonly provider: LoginProvider;
  readonly gateway: RunningGateway;
  readonly metrics: Metrics;
  readonly user: { readonly username: string; readonly password: string };
}

export interface DemoGatewayContext {
  readonly dir: string;
  readonly caDir: string;
  readonly caUrl: string;
  readonly bundleFile: string;
  readonly edge: { readonly cert: string; readonly key: string };
  readonly web: { readonly inboundPort: number; readonly id: string };
  readonly logger: Logger;
  readonly closers: Array<() => Promise<void>>;
}

export async function startDemoGateway(context: DemoGatewayContext): Promise<DemoGateway> {
  const { dir, closers } = context;
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  const password = randomBytes(6).toString('base64url');
  const clientSecret = randomBytes(18).toString('base64url');

  // The provider on another host name than the gateway: cookies ignore ports, so the two keep separate jars.
  const server: Server = createServer();
  const listening = await listenOnLoopback(server);
  closers.push(listening.close);
  const providerUrl = `http://localhost:${listening.port}`;
  const provider = await createLoginProvider({
    issuer: providerUrl,
    users: [{ username: DEMO_USER.username, password, claims: { email: DEMO_USER.email, groups: ['customers'] } }],
    clients: [
      {
        clientId: GATEWAY_CLIENT_ID,
        clientSecret,
        redirectUris: [`${url}/.meshauth/callback`],
        postLogoutRedirectUris: [`${url}/`],
      },
    ],
    audience: 'shop',
    scopes: ['orders:read'],
    accessTokenTtlSeconds: 600,
  });
  server.on('request', provider.handler);

  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text, { mode: 0o600 });
    return path;
  };
  const tokenFile = file(
    'gateway.token',
    await createJoinToken({ dir: context.caDir, id: GATEWAY_ID, ttlMs: 10 * 60_000 }),
  );
  const config = gatewayConfigFromObject(
    {
      trustDomain: 'example.org',
      ca: { url: context.caUrl, bundle: context.bundleFile, token: tokenFile },
      listen: `127.0.0.1:${port}`,
      tls: context.edge,
      session: {
        keys: [file('session.key', randomBytes(32).toString('base64'))],
        idleTimeout: '30m',
        absoluteTimeout: '12h',
      },
      oidc: {
        issuer: providerUrl,
        clientId: GATEWAY_CLIENT_ID,
        clientSecretFile: file('gateway-client.secret', clientSecret),
        redirectUri: `${url}/.meshauth/callback`,
        scopes: ['openid', 'profile', 'email', 'offline_access', 'orders:read'],
        claims: ['email', 'groups'],
      },
      routes: [
        {
          name: 'web',
          match: { host: '127.0.0.1', pathPrefix: '/' },
          to: { address: `127.0.0.1:${context.web.inboundPort}`, ids: [context.web.id] },
          login: 'required',
        },
      ],
      admin: { listen: '127.0.0.1:0' },
      drainTimeout: '2s',
    },
    'demo:gateway',
  );
  const metrics = new Metrics();
  const gateway = await startGateway(config, { logger: context.logger, metrics });
  closers.push(() => gateway.close(0));
  return { url, providerUrl, provider, gateway, metrics, user: { username: DEMO_USER.username, password } };
}

async function freePort(): Promise<number> {
  const probe = createNetServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
