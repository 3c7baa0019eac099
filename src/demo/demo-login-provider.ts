// A local OpenID provider with browser sign-in, for `meshauth demo` and the gateway tests: panva's oidc-provider
// (a devDependency, imported lazily) with the authorization code flow (PKCE), refresh tokens, RP-initiated logout,
// the client-credentials grant (JWT access tokens), and a plain username/password form. Consent is
// implied for the configured clients (they are first-party). It returns a request handler; the caller owns the
// listener. Not a production identity provider: users and passwords live in memory.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  DEMO_RESOURCE,
  jwtAccessTokenResources,
  loadOidcProvider,
  newEs256SigningKey,
} from '../authn/oidc-provider-kit.js';

export interface DemoUser {
  readonly username: string;
  readonly password: string;
  /** Claims released in the ID token (profile/email scopes), e.g. email, groups, roles, tenant. */
  readonly claims: Readonly<Record<string, unknown>>;
}

export interface LoginClient {
  readonly clientId: string;
  readonly clientSecret: string;
  readonly redirectUris: readonly string[];
  readonly postLogoutRedirectUris: readonly string[];
}

export interface LoginProviderOptions {
  /** The URL this provider is served at (`http://127.0.0.1:<port>`); bind the listener first. */
  readonly issuer: string;
  readonly users: readonly DemoUser[];
  readonly clients: readonly LoginClient[];
  /** `aud` of access tokens (client credentials and code flow alike). */
  readonly audience?: string;
  /** Resource scopes, e.g. orders:read. */
  readonly scopes?: readonly string[];
  readonly accessTokenTtlSeconds?: number;
  /** Client-credentials clients (API callers). */
  readonly apiClients?: readonly { readonly clientId: string; readonly clientSecret: string }[];
}

export interface LoginProvider {
  readonly issuer: string;
  readonly audience: string;
  readonly tokenEndpoint: string;
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** Client-credentials token for an API client (the listener must be up). */
  getToken(clientId: string, scope?: string): Promise<string>;
  /** Number of sign-ins that passed the password check. */
  readonly logins: { count: number };
}

interface ProviderInstance {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>;
  interactionFinished(req: IncomingMessage, res: ServerResponse, result: object, options?: object): Promise<void>;
  Grant: (new (init: {
    clientId: string;
    accountId: string;
  }) => GrantInstance) & {
    find(id: string): Promise<GrantInstance | undefined>;
  };
}
interface InteractionDetails {
  uid: string;
  prompt: {
    name: string;
    details: {
      missingOIDCScope?: string[];
      missingOIDCClaims?: string[];
      missingResourceScopes?: Record<string, string[]>;
    };
  };
  params: { client_id: string };
  session?: { accountId: string };
  grantId?: string;
}
interface GrantInstance {
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: string[]): void;
  addResourceScope(resource: string, scope: string): void;
  save(): Promise<string>;
}
type ProviderClass = new (issuer: string, configuration: object) => ProviderInstance;
interface OidcContext {
  oidc: {
    client: { clientId: string };
    session: { accountId: string; grantIdFor(clientId: string): string | undefined };
    result?: { consent?: { grantId?: string } };
    provider: { Grant: { find(id: string): Promise<unknown> } & (new (init: object) => GrantInstance) };
  };
  body?: string;
}

const OIDC_SCOPES = 'openid profile email offline_access';
const PROFILE_CLAIMS = ['name', 'email', 'email_verified', 'groups', 'roles', 'tenant', 'realm_access'];

// In-memory storage (one Map per provider, so two providers in one process never share grants).
function memoryAdapter() {
  const store = new Map<string, { payload: Record<string, unknown>; expiresAt: number }>();
  return class MemoryAdapter {
    readonly #name: string;
    constructor(name: string) {
      this.#name = name;
    }
    async upsert(id: string, payload: Record<string, unknown>, expiresIn: number): Promise<void> {
      store.set(`${this.#name}:${id}`, { payload, expiresAt: Date.now() + (expiresIn || 3600) * 1000 });
      if (typeof payload.uid === 'string')
        store.set(`${this.#name}:uid:${payload.uid}`, { payload, expiresAt: Date.now() + (expiresIn || 3600) * 1000 });
    }
    async find(id: string): Promise<Record<string, unknown> | undefined> {
      const entry = store.get(`${this.#name}:${id}`);
      return entry === undefined || entry.expiresAt < Date.now() ? undefined : entry.payload;
    }
    async findByUid(uid: string): Promise<Record<string, unknown> | undefined> {
      return store.get(`${this.#name}:uid:${uid}`)?.payload;
    }
    async findByUserCode(): Promise<undefined> {
      return undefined;
    }
    async consume(id: string): Promise<void> {
      const entry = store.get(`${this.#name}:${id}`);
      if (entry !== undefined) entry.payload.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string): Promise<void> {
      store.delete(`${this.#name}:${id}`);
    }
    async revokeByGrantId(grantId: string): Promise<void> {
      for (const [key, entry] of store) if (entry.payload.grantId === grantId) store.delete(key);
    }
  };
}

export async function createLoginProvider(options: LoginProviderOptions): Promise<LoginProvider> {
  const Provider = await loadOidcProvider<ProviderClass>();
  const audience = options.audience ?? 'meshauth-demo';
  const scopes = options.scopes ?? [];
  const ttl = options.accessTokenTtlSeconds ?? 300;
  const key = await newEs256SigningKey();
  const users = new Map(options.users.map((u) => [u.username, u]));
  const logins = { count: 0 };
  const apiClients = options.apiClients ?? [];

  const provider = new Provider(options.issuer, {
    adapter: memoryAdapter(),
    jwks: { keys: [key] },
    scopes: ['openid', 'profile', 'email', 'offline_access', ...scopes],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: PROFILE_CLAIMS.filter((c) => !c.startsWith('email')),
    },
    conformIdTokenClaims: false, // the gateway reads the user's claims from the ID token, not from userinfo
    cookies: { keys: [randomBytes(32).toString('hex')] },
    ttl: {
      AccessToken: ttl,
      ClientCredentials: ttl,
      IdToken: ttl,
      RefreshToken: 3600,
      Session: 3600,
      Interaction: 600,
      Grant: 3600,
    },
    findAccount: (_ctx: unknown, sub: string) => {
      const user = users.get(sub);
      if (user === undefined) return undefined;
      return { accountId: sub, claims: () => ({ sub, name: sub, ...user.claims }) };
    },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    issueRefreshToken: (_ctx: unknown, client: { grantTypeAllowed(t: string): boolean }) =>
      client.grantTypeAllowed('refresh_token'),
    loadExistingGrant: async (ctx: OidcContext) => {
      const clientId = ctx.oidc.client.clientId;
      const grantId = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session.grantIdFor(clientId);
      if (grantId !== undefined) {
        const found = await ctx.oidc.provider.Grant.find(grantId);
        if (found !== undefined) return found;
      }
      // First-party clients: consent is implied.
      const grant = new ctx.oidc.provider.Grant({ clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope(OIDC_SCOPES);
      grant.addOIDCClaims(PROFILE_CLAIMS);
      if (scopes.length > 0) grant.addResourceScope(DEMO_RESOURCE, scopes.join(' '));
      await grant.save();
      return grant;
    },
    clients: [
      ...options.clients.map((client) => ({
        client_id: client.clientId,
        client_secret: client.clientSecret,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: [...client.redirectUris],
        post_logout_redirect_uris: [...client.postLogoutRedirectUris],
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: 'ES256',
      })),
      ...apiClients.map((client) => ({
        client_id: client.clientId,
        client_secret: client.clientSecret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: scopes.join(' '),
        id_token_signed_response_alg: 'ES256',
      })),
    ],
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        // Signs out without a confirmation page (the request comes from a first-party client's logout).
        logoutSource: async (ctx: OidcContext, form: string) => {
          ctx.body = `<!doctype html><meta charset="utf-8"><title>Signing out</title>${form.replace('</form>', '<input type="hidden" name="logout" value="yes"></form>')}<script>document.forms[0].submit()</script>`;
        },
      },
      resourceIndicators: jwtAccessTokenResources(audience, scopes, ttl),
    },
  });
  const callback = provider.callback();

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', options.issuer);
    const match = /^\/interaction\/([A-Za-z0-9_-]+)(\/login)?$/.exec(url.pathname);
    if (match === null) {
      callback(req, res);
      return;
    }
    interaction(req, res, match[2] !== undefined).catch((error: Error) => {
      if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`interaction failed: ${error.message}`);
    });
  };

  async function interaction(req: IncomingMessage, res: ServerResponse, submit: boolean): Promise<void> {
    const details = await provider.interactionDetails(req, res);
    if (details.prompt.name === 'consent' && details.session !== undefined) {
      // First-party clients: consent to whatever is still missing (e.g. a resource scope) without a page.
      const found = details.grantId === undefined ? undefined : await provider.Grant.find(details.grantId);
      const grant =
        found ?? new provider.Grant({ clientId: details.params.client_id, accountId: details.session.accountId });
      const missing = details.prompt.details;
      if (missing.missingOIDCScope !== undefined) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims !== undefined) grant.addOIDCClaims(missing.missingOIDCClaims);
      for (const [resource, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
        grant.addResourceScope(resource, scopes.join(' '));
      }
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      return;
    }
    if (!submit) {
      loginPage(res, details.uid, '');
      return;
    }
    const form = new URLSearchParams(await readBody(req));
    const user = users.get(form.get('username') ?? '');
    if (user === undefined || user.password !== form.get('password')) {
      loginPage(res, details.uid, 'Wrong username or password.');
      return;
    }
    logins.count++;
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: user.username } },
      { mergeWithLastSubmission: false },
    );
  }

  return {
    issuer: options.issuer,
    audience,
    tokenEndpoint: `${options.issuer}/token`,
    handler,
    logins,
    async getToken(clientId, scope) {
      const client = apiClients.find((c) => c.clientId === clientId);
      if (client === undefined) throw new Error(`unknown API client ${clientId}`);
      const form = new URLSearchParams({ grant_type: 'client_credentials' });
      if (scope !== undefined) form.set('scope', scope);
      const basic = Buffer.from(
        `${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`,
      ).toString('base64');
      const response = await fetch(`${options.issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${basic}` },
        body: form.toString(),
      });
      const body = (await response.json()) as { access_token?: string; error?: string };
      if (response.status !== 200 || typeof body.access_token !== 'string') {
        throw new Error(`token request failed: HTTP ${response.status} ${body.error ?? ''}`);
      }
      return body.access_token;
    },
  };
}

function loginPage(res: ServerResponse, uid: string, message: string): void {
  const body = `<!doctype html><meta charset="utf-8"><title>Sign in — meshauth demo provider</title>
<h1>Sign in</h1>${message === '' ? '' : `<p id="error">${message}</p>`}
<form method="post" action="/interaction/${uid}/login">
<label>Username <input name="username" id="username" autocomplete="username"></label>
<label>Password <input name="password" id="password" type="password" autocomplete="current-password"></label>
<button type="submit" id="submit">Sign in</button>
</form>\n`;
  res.writeHead(message === '' ? 200 : 401, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      text += chunk;
      if (text.length > 16_384) req.destroy(new Error('form too large'));
    });
    req.on('end', () => resolve(text));
    req.on('error', reject);
  });
}
