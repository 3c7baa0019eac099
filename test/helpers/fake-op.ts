// A scripted OpenID provider for the ID-token attacks a real provider never produces: the token endpoint answers
// with an ID token whose issuer, audience, authorized party, nonce, algorithm or times the test chooses (`mode`).
// Discovery, JWKS, an authorization endpoint that approves at once (echoing state, remembering nonce) and a token
// endpoint that can also fail as a provider in trouble does, or answer with a token response of the wrong shape
// (`tokenFault`); with `refresh` set, sign-ins get a refresh token and the refresh grant answers as `refresh` says.
// `discoveryDocument` is the core of its discovery answer, for other scripted providers.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { GATEWAY_CLIENT, type GatewayMesh, startGatewayMesh } from './gateway-mesh.js';

export type IdTokenMode =
  | 'ok'
  | 'wrong_iss'
  | 'wrong_aud'
  | 'other_azp'
  | 'bad_nonce'
  | 'alg_none'
  | 'hs256_public_key'
  | 'expired'
  /** Issued one day ahead of now, expiring ten years ahead: minted to be used later. */
  | 'iat_in_future';

/**
 * How the token endpoint fails: an HTML 503 (a proxy in front of a provider that is down), a JSON 500 `server_error`,
 * no answer, an answer whose body stops after its first bytes; or answers with the wrong shape: `token_type` mac, no
 * `access_token`.
 */
export type TokenEndpointFault =
  | 'none'
  | 'html_503'
  | 'server_error'
  | 'no_answer'
  | 'body_stalls'
  | 'token_type_mac'
  | 'no_access_token';

/** The faults that are the provider in trouble, whatever the request: answered before the request is read. */
const OUTAGES: ReadonlySet<TokenEndpointFault> = new Set(['html_503', 'server_error', 'no_answer', 'body_stalls']);

/**
 * `none`: sign-ins get no refresh token. Else they get one, and a refresh grant is answered so: renewed, refused
 * (`invalid_grant`), failed (a JSON `server_error`, a rate limiter's HTML 429), or renewed with an ID token issued to
 * another client or issued one day ahead (as `iat_in_future`).
 */
export type RefreshAnswer =
  | 'none'
  | 'ok'
  | 'invalid_grant'
  | 'server_error'
  | 'html_429'
  | 'id_token_wrong_aud'
  | 'id_token_iat_in_future';

/** The ID token each renewal that carries one is answered with. */
const REFRESH_ID_TOKENS: Partial<Record<RefreshAnswer, IdTokenMode>> = {
  id_token_wrong_aud: 'wrong_aud',
  id_token_iat_in_future: 'iat_in_future',
};

export interface FakeOp {
  readonly issuer: string;
  mode: IdTokenMode;
  tokenFault: TokenEndpointFault;
  refresh: RefreshAnswer;
  close(): Promise<void>;
}

/** The discovery fields a relying party needs of a provider at `issuer` (code flow, ES256 ID tokens). */
export function discoveryDocument(issuer: string): Record<string, unknown> {
  return {
    issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    jwks_uri: `${issuer}/jwks`,
    response_types_supported: ['code'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['ES256'],
  };
}

export async function startFakeOp(clientId: string): Promise<FakeOp> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  const nonces = new Map<string, string>();
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.3', resolve));
  const issuer = `http://127.0.0.3:${(server.address() as AddressInfo).port}`;
  const op: FakeOp = {
    issuer,
    mode: 'ok',
    tokenFault: 'none',
    refresh: 'none',
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  server.on('request', (req, res) => {
    const url = new URL(req.url ?? '/', issuer);
    const json = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (url.pathname === '/.well-known/openid-configuration') {
      json(200, { ...discoveryDocument(issuer), code_challenge_methods_supported: ['S256'] });
      return;
    }
    if (url.pathname === '/jwks') {
      json(200, { keys: [publicJwk] });
      return;
    }
    if (url.pathname === '/authorize') {
      const code = `code-${Math.random().toString(36).slice(2)}`;
      nonces.set(code, url.searchParams.get('nonce') ?? '');
      const back = new URL(url.searchParams.get('redirect_uri') ?? '');
      back.searchParams.set('code', code);
      back.searchParams.set('state', url.searchParams.get('state') ?? '');
      res.writeHead(302, { location: back.href }).end();
      return;
    }
    if (url.pathname === '/token' && OUTAGES.has(op.tokenFault)) {
      req.resume();
      if (op.tokenFault === 'html_503') res.writeHead(503, { 'content-type': 'text/html' }).end('<h1>down</h1>');
      if (op.tokenFault === 'server_error') json(500, { error: 'server_error' });
      if (op.tokenFault === 'body_stalls') res.writeHead(200, { 'content-type': 'application/json' }).write('{"access');
      return; // no_answer, body_stalls: the request stays open until the client gives up or the server closes
    }
    if (url.pathname === '/token') {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      req.on('end', () => {
        const form = new URLSearchParams(body);
        if (form.get('grant_type') === 'refresh_token') {
          if (op.refresh === 'ok') {
            // Rotated, as providers that rotate refresh tokens do: each renewal is a refresh of its own.
            const next = `${form.get('refresh_token') ?? ''}+`;
            json(200, { access_token: 'opaque-at-2', token_type: 'Bearer', expires_in: 300, refresh_token: next });
          } else if (op.refresh === 'server_error') {
            json(500, { error: 'server_error' });
          } else if (op.refresh === 'html_429') {
            res.writeHead(429, { 'content-type': 'text/html' }).end('<h1>slow down</h1>');
          } else if (REFRESH_ID_TOKENS[op.refresh] !== undefined) {
            const next = `${form.get('refresh_token') ?? ''}+`;
            idToken(REFRESH_ID_TOKENS[op.refresh] as IdTokenMode, '')
              .then((id_token) =>
                json(200, {
                  access_token: 'opaque-at-2',
                  token_type: 'Bearer',
                  expires_in: 300,
                  refresh_token: next,
                  id_token,
                }),
              )
              .catch((error: Error) => json(500, { error: error.message }));
          } else {
            json(400, { error: 'invalid_grant' });
          }
          return;
        }
        const code = form.get('code') ?? '';
        const nonce = nonces.get(code);
        nonces.delete(code);
        if (nonce === undefined) {
          json(400, { error: 'invalid_grant' });
          return;
        }
        idToken(op.mode, nonce)
          .then((id_token) => {
            const answer: Record<string, unknown> = {
              access_token: 'opaque-at',
              token_type: op.tokenFault === 'token_type_mac' ? 'mac' : 'Bearer',
              expires_in: 300,
              id_token,
              ...(op.refresh === 'none' ? {} : { refresh_token: `rt-${code}` }),
            };
            if (op.tokenFault === 'no_access_token') delete answer.access_token;
            json(200, answer);
          })
          .catch((error: Error) => json(500, { error: error.message }));
      });
      return;
    }
    res.writeHead(404).end();
  });

  async function idToken(mode: IdTokenMode, nonce: string): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    // A refreshed ID token carries no nonce (there is none to echo).
    const claims = {
      sub: 'mallory',
      ...(nonce === '' && mode !== 'bad_nonce' ? {} : { nonce: mode === 'bad_nonce' ? 'not-the-nonce' : nonce }),
    };
    if (mode === 'alg_none') {
      const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
      return `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...claims, iss: issuer, aud: clientId, iat: now, exp: now + 300 })}.`;
    }
    const jwt = new SignJWT(mode === 'other_azp' ? { ...claims, azp: 'another-client' } : claims)
      .setIssuer(mode === 'wrong_iss' ? 'http://127.0.0.3:1' : issuer)
      .setAudience(mode === 'wrong_aud' ? 'another-client' : clientId)
      .setIssuedAt(issuedAt(mode, now))
      .setExpirationTime(expiresAt(mode, now));
    if (mode === 'hs256_public_key') {
      // The classic confusion: HMAC keyed with the provider's public key, which anyone can fetch.
      return jwt
        .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
        .sign(new TextEncoder().encode(JSON.stringify(publicJwk)));
    }
    return jwt.setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(privateKey);
  }
  return op;
}

const DAY_S = 24 * 60 * 60;

function issuedAt(mode: IdTokenMode, now: number): number {
  if (mode === 'expired') return now - 7200;
  return mode === 'iat_in_future' ? now + DAY_S : now;
}

function expiresAt(mode: IdTokenMode, now: number): number {
  if (mode === 'expired') return now - 3600;
  return mode === 'iat_in_future' ? now + 10 * 365 * DAY_S : now + 300;
}

/**
 * A gateway mesh that signs in against a scripted provider (its answers are set per test through `op`); `oidc` adds
 * to or overrides the gateway's OIDC settings.
 */
export async function startScriptedOpMesh(
  oidc: Readonly<Record<string, unknown>> = {},
): Promise<{ readonly op: FakeOp; readonly mesh: GatewayMesh }> {
  const op = await startFakeOp(GATEWAY_CLIENT.clientId);
  try {
    const mesh = await startGatewayMesh({
      gateway: (base) => ({
        ...base,
        oidc: { ...(base.oidc as object), issuer: op.issuer, scopes: ['openid'], ...oidc },
      }),
    });
    return { op, mesh };
  } catch (error) {
    await op.close();
    throw error;
  }
}
