// A real OpenID issuer (panva oidc-provider via src/authn/demo-issuer.ts) on http://127.0.0.1:<port 0>, with switches
// for the JWKS faults (down, garbage, hanging) and request counters.
// Reused by the authn, sidecar and demo tests. oidc-provider prints "Unsupported runtime" on Node 20: harmless.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JWK } from 'jose';
import { createDemoIssuer, type DemoClient, type DemoTokenRequest } from '../../src/authn/demo-issuer.js';

/** How the JWKS endpoint answers: normally, 500, 200 with non-JSON, or never (until close). */
export type JwksMode = 'ok' | 'error' | 'garbage' | 'hang';

export interface OidcIssuerOptions {
  readonly audience?: string;
  readonly scopes?: readonly string[];
  readonly clients?: readonly DemoClient[];
  readonly accessTokenTtlSeconds?: number;
}

export interface OidcIssuer {
  readonly issuer: string;
  readonly jwksUri: string;
  readonly audience: string;
  getToken(request?: DemoTokenRequest): Promise<string>;
  /** New signing key (the old one stays published); resolves to the new kid. */
  rotateKeys(): Promise<string>;
  /** Current private signing JWK, for forging tokens with the issuer's real key. */
  signingKey(): Readonly<JWK>;
  setJwksMode(mode: JwksMode): void;
  /** Requests seen so far, by endpoint. */
  readonly hits: { jwks: number; discovery: number };
  close(): Promise<void>;
}

export async function startOidcIssuer(options: OidcIssuerOptions = {}): Promise<OidcIssuer> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const issuerUrl = `http://127.0.0.1:${port}`;
  const demo = await createDemoIssuer({
    issuer: issuerUrl,
    clients: options.clients ?? [{ clientId: 'orders-client', clientSecret: 'orders-secret' }],
    ...(options.audience === undefined ? {} : { audience: options.audience }),
    ...(options.scopes === undefined ? {} : { scopes: options.scopes }),
    ...(options.accessTokenTtlSeconds === undefined ? {} : { accessTokenTtlSeconds: options.accessTokenTtlSeconds }),
  });
  const jwksPath = new URL(demo.jwksUri).pathname;
  const hits = { jwks: 0, discovery: 0 };
  let mode: JwksMode = 'ok';

  server.on('request', (req, res) => {
    const path = new URL(req.url ?? '/', issuerUrl).pathname;
    if (path === '/.well-known/openid-configuration') hits.discovery++;
    if (path === jwksPath) {
      hits.jwks++;
      if (mode === 'error') {
        res.writeHead(500, { 'content-type': 'text/plain' }).end('down');
        return;
      }
      if (mode === 'garbage') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys": [not json');
        return;
      }
      if (mode === 'hang') return; // never answers; closeAllConnections() ends it
    }
    demo.handler(req, res);
  });

  return {
    issuer: issuerUrl,
    jwksUri: demo.jwksUri,
    audience: demo.audience,
    getToken: (request) => demo.getToken(request),
    rotateKeys: () => demo.rotateKeys(),
    signingKey: () => demo.signingKey(),
    setJwksMode: (next) => {
      mode = next;
    },
    hits,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
