// A local OpenID issuer for `meshauth demo` and the tests: panva's oidc-provider with the
// client-credentials grant issuing JWT access tokens (`typ` at+jwt) signed ES256. It returns a request handler; the
// caller (composition root or test) owns the listener. oidc-provider is a devDependency, so it is imported lazily.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JWK } from 'jose';
import { request } from 'undici';
import { jwtAccessTokenResources, loadOidcProvider, newEs256SigningKey } from './oidc-provider-kit.js';

export interface DemoClient {
  readonly clientId: string;
  readonly clientSecret: string;
  /** Space-separated scopes the client may ask for; defaults to every issuer scope. */
  readonly scope?: string;
}

export interface DemoIssuerOptions {
  /** The URL this issuer is served at (`http://127.0.0.1:<port>`); bind the listener first. */
  readonly issuer: string;
  /** `aud` of tokens for the default resource. */
  readonly audience?: string;
  readonly scopes?: readonly string[];
  readonly clients?: readonly DemoClient[];
  readonly accessTokenTtlSeconds?: number;
}

export interface DemoTokenRequest {
  readonly clientId?: string;
  /** Space-separated scopes. */
  readonly scope?: string;
  /** The OAuth resource indicator; its value becomes `aud` (the default resource gets `audience`). */
  readonly resource?: string;
}

export interface DemoIssuer {
  readonly issuer: string;
  readonly jwksUri: string;
  readonly tokenEndpoint: string;
  readonly audience: string;
  readonly clients: readonly DemoClient[];
  /** Node request handler serving discovery, JWKS and the token endpoint. */
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** Client-credentials grant against this issuer (the listener must be up). */
  getToken(request?: DemoTokenRequest): Promise<string>;
  /** Signs with a fresh key from now on; the previous key stays published. Resolves to the new kid. */
  rotateKeys(): Promise<string>;
  /** The current signing key, private part included (tests forge tokens with it). */
  signingKey(): Readonly<JWK>;
}

interface ProviderInstance {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
}
type ProviderClass = new (issuer: string, configuration: object) => ProviderInstance;

// In-memory storage so oidc-provider does not warn about its development adapter on every start.
class MemoryAdapter {
  static readonly #store = new Map<string, { payload: Record<string, unknown>; expiresAt: number }>();
  readonly #name: string;
  constructor(name: string) {
    this.#name = name;
  }
  #key(id: string): string {
    return `${this.#name}:${id}`;
  }
  async upsert(id: string, payload: Record<string, unknown>, expiresIn: number): Promise<void> {
    MemoryAdapter.#store.set(this.#key(id), { payload, expiresAt: Date.now() + expiresIn * 1000 });
  }
  async find(id: string): Promise<Record<string, unknown> | undefined> {
    const entry = MemoryAdapter.#store.get(this.#key(id));
    if (entry === undefined || entry.expiresAt < Date.now()) return undefined;
    return entry.payload;
  }
  async findByUserCode(): Promise<undefined> {
    return undefined;
  }
  async findByUid(): Promise<undefined> {
    return undefined;
  }
  async consume(id: string): Promise<void> {
    const entry = MemoryAdapter.#store.get(this.#key(id));
    if (entry !== undefined) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }
  async destroy(id: string): Promise<void> {
    MemoryAdapter.#store.delete(this.#key(id));
  }
  async revokeByGrantId(): Promise<void> {}
}

/** Builds the issuer. Resolves once oidc-provider is loaded and the first signing key exists. */
export async function createDemoIssuer(options: DemoIssuerOptions): Promise<DemoIssuer> {
  const Provider = await loadOidcProvider<ProviderClass>();
  const issuer = options.issuer;
  const audience = options.audience ?? 'meshauth-demo';
  const scopes = options.scopes ?? ['orders:read', 'orders:write'];
  const ttl = options.accessTokenTtlSeconds ?? 300;
  const clients = options.clients ?? [{ clientId: 'demo-client', clientSecret: randomBytes(16).toString('hex') }];
  const cookieKeys = [randomBytes(32).toString('hex')];
  let keys: JWK[] = [await newEs256SigningKey()];

  const build = (): ((req: IncomingMessage, res: ServerResponse) => void) =>
    new Provider(issuer, {
      adapter: MemoryAdapter,
      jwks: { keys },
      scopes: [...scopes],
      cookies: { keys: cookieKeys },
      ttl: { ClientCredentials: ttl, AccessToken: ttl },
      clients: clients.map((client) => ({
        client_id: client.clientId,
        client_secret: client.clientSecret,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        scope: client.scope ?? scopes.join(' '),
        // The JWKS holds ES256 keys only; oidc-provider's RS256 default would make this client invalid.
        id_token_signed_response_alg: 'ES256',
      })),
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        resourceIndicators: jwtAccessTokenResources(audience, scopes, ttl),
      },
    }).callback();

  let current = build();
  const tokenEndpoint = `${issuer}/token`;
  return {
    issuer,
    jwksUri: `${issuer}/jwks`,
    tokenEndpoint,
    audience,
    clients,
    handler: (req, res) => current(req, res),
    async getToken(tokenRequest = {}) {
      const client = clients.find((c) => c.clientId === (tokenRequest.clientId ?? clients[0]?.clientId));
      if (client === undefined) throw new Error(`unknown demo client ${tokenRequest.clientId}`);
      const form = new URLSearchParams({ grant_type: 'client_credentials' });
      if (tokenRequest.scope !== undefined) form.set('scope', tokenRequest.scope);
      if (tokenRequest.resource !== undefined) form.set('resource', tokenRequest.resource);
      const basic = Buffer.from(
        `${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`,
      ).toString('base64');
      const response = await request(tokenEndpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${basic}` },
        body: form.toString(),
      });
      const body = (await response.body.json()) as { access_token?: string; error?: string };
      if (response.statusCode !== 200 || typeof body.access_token !== 'string') {
        throw new Error(`token request failed: HTTP ${response.statusCode} ${body.error ?? ''}`);
      }
      return body.access_token;
    },
    async rotateKeys() {
      const next = await newEs256SigningKey();
      keys = [next, ...keys.slice(0, 1)];
      current = build();
      return next.kid as string;
    },
    signingKey: () => keys[0] as JWK,
  };
}
