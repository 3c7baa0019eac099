// `POST /v1/token`: the OAuth 2.0 client-credentials grant with mutual-TLS client
// authentication (tls_client_auth). The client is its current X509-SVID, nothing else; the answer is
// a JWT-SVID for the one requested audience (the OAuth token body, `Cache-Control: no-store`), within the caller's
// per-identity JWT-SVID limit (identity-limit.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger, Metrics } from '../telemetry/index.js';
import type { CaAuthority } from './authority.js';
import type { IdentityLimit } from './identity-limit.js';
import type { JwtSigningKey } from './jwt-signing-key.js';
import { JWT_SVID_MIN_TTL_MS, mintJwtSvid } from './jwt-svid.js';
import { authenticatePeer } from './peer-svid.js';
import { readBodyLimited } from './read-body.js';
import { clientIdMismatch, parseTokenRequest, svidEndsTooSoon } from './token-request.js';

/** A token request is a few parameters; OAuth sets no limit, we set a small one. */
export const MAX_TOKEN_REQUEST_BYTES = 8 * 1024;
export const ISSUED_TOKEN_TYPE_JWT = 'urn:ietf:params:oauth:token-type:jwt';

export interface TokenEndpointOptions {
  readonly authority: CaAuthority;
  readonly signingKey: JwtSigningKey;
  readonly issuer: string;
  readonly jwtTtlMs: number;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly now: () => Date;
  /** Per-identity JWT-SVID limit (identity-limit.ts), its buckets apart from the X509-SVID ones. */
  readonly limit: IdentityLimit;
}

export async function issueAccessToken(
  options: TokenEndpointOptions,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const now = options.now();
  // Authenticate before judging the body (load shedding has read it already, bounded): an unauthenticated caller
  // learns nothing about it.
  const caller = authenticatePeer(req, options.authority.material, now, 'token request');
  const subject = caller.id;
  const request = parseTokenRequest(req.headers['content-type'], await readBodyLimited(req, MAX_TOKEN_REQUEST_BYTES));
  if (request.clientId !== undefined && request.clientId !== subject.toString()) throw clientIdMismatch();
  const remainingMs = caller.notAfter.getTime() - now.getTime();
  if (remainingMs < JWT_SVID_MIN_TTL_MS) throw svidEndsTooSoon(remainingMs);
  // Counted only for a request that would be signed: a malformed one costs no signature and is refused anyway.
  options.limit.admit(subject, now, res, { method: 'jwt' });
  const minted = await mintJwtSvid({
    key: options.signingKey,
    issuer: options.issuer,
    subject,
    audience: request.audience,
    ttlMs: options.jwtTtlMs,
    now,
    notAfter: caller.notAfter,
  });
  options.metrics.caSvidsIssued.inc({ method: 'jwt' });
  options.logger.info(
    {
      event: 'jwt_svid_issued',
      spiffeId: subject.toString(),
      audience: request.audience.slice(0, 200),
      jti: minted.jti,
      expiresAt: minted.expiresAt.toISOString(),
    },
    'JWT-SVID issued',
  );
  const body = JSON.stringify({
    access_token: minted.token,
    token_type: 'Bearer',
    expires_in: minted.expiresIn,
    issued_token_type: ISSUED_TOKEN_TYPE_JWT,
  });
  res.writeHead(200, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    pragma: 'no-cache',
  });
  res.end(`${body}\n`);
}
