// Parses an OAuth 2.0 client-credentials token request (`grant_type`, no repeated parameter; the `resource` or
// `audience` parameter) into the one audience a JWT-SVID is issued for, and maps every rejection to its OAuth `error`.
// Pure: no I/O, no clock; client authentication (tls_client_auth) happens before this, in token-endpoint.ts.
import { MeshauthError } from '../errors/index.js';

/**
 * The OAuth token error values this endpoint uses, plus `invalid_target` (resource indicators), and `server_error`
 * and `temporarily_unavailable` of the authorization endpoint: the token errors have no value for "retry later", and
 * `invalid_request` would tell a client that is merely too fast that its request is malformed. The 429 status and
 * Retry-After say the rest.
 */
export type OAuthErrorCode =
  | 'invalid_client'
  | 'invalid_request'
  | 'unsupported_grant_type'
  | 'invalid_target'
  | 'server_error'
  | 'temporarily_unavailable';

export interface TokenRequest {
  readonly audience: string;
  /** Optional here, though mTLS client auth normally requires it; when sent it must be the certificate's SPIFFE ID. */
  readonly clientId: string | undefined;
}

export const FORM_CONTENT_TYPE = 'application/x-www-form-urlencoded';
const MAX_AUDIENCE_LENGTH = 512;
/** Printable ASCII without space: an audience is an identifier, never text (and it ends up in logs). */
const AUDIENCE_SHAPE = /^[\x21-\x7e]+$/;
const SINGLE_VALUED = ['grant_type', 'audience', 'resource', 'client_id'] as const;

/** Fixed `error_description` per rejection reason: no request input ever reaches the client. */
const DESCRIPTIONS: Readonly<Record<string, string>> = {
  unsupported_media_type: `the request body must be ${FORM_CONTENT_TYPE}`,
  duplicate_parameter: 'a request parameter is repeated (RFC 6749 §3.2)',
  missing_grant_type: 'grant_type is required',
  unsupported_grant_type: 'only grant_type=client_credentials is supported',
  missing_audience: 'audience (or resource) is required',
  audience_invalid: 'audience must be 1-512 printable ASCII characters without spaces',
  resource_invalid: 'resource must be an absolute URI without a fragment (RFC 8707 §2)',
  audience_resource_mismatch: 'audience and resource name different targets; a token has a single audience',
  client_cert_expiring: 'the client certificate expires in under 30 s (a token never outlives it): renew it first',
  client_id_mismatch: 'client_id does not match the client certificate',
  identity_rate_limited: 'too many token requests for this client; retry after the Retry-After delay',
};

/** Parses the form body; throws MeshauthError (MESHAUTH_ERR_CA_BAD_REQUEST) carrying the OAuth error code. */
export function parseTokenRequest(contentType: string | undefined, body: Buffer): TokenRequest {
  const mediaType = (contentType ?? '').split(';', 1)[0]?.trim().toLowerCase();
  if (mediaType !== FORM_CONTENT_TYPE) throw badRequest('invalid_request', 'unsupported_media_type');
  const params = new URLSearchParams(body.toString('utf8'));
  for (const name of SINGLE_VALUED) {
    if (params.getAll(name).length > 1) throw badRequest('invalid_request', 'duplicate_parameter');
  }
  const grantType = params.get('grant_type');
  if (grantType === null || grantType === '') throw badRequest('invalid_request', 'missing_grant_type');
  if (grantType !== 'client_credentials') throw badRequest('unsupported_grant_type', 'unsupported_grant_type');
  const audience = paramValue(params, 'audience');
  const resource = paramValue(params, 'resource');
  if (audience !== null) checkAudience(audience);
  if (resource !== null) checkResource(resource);
  if (audience !== null && resource !== null && audience !== resource) {
    throw badRequest('invalid_target', 'audience_resource_mismatch');
  }
  const target = audience ?? resource;
  if (target === null) throw badRequest('invalid_request', 'missing_audience');
  return { audience: target, clientId: paramValue(params, 'client_id') ?? undefined };
}

/** A parameter sent without a value is treated as omitted (RFC 6749 §3.1): `audience=` is a missing audience. */
function paramValue(params: URLSearchParams, name: string): string | null {
  const value = params.get(name);
  return value === '' ? null : value;
}

/** The OAuth error body for any error raised while serving the token endpoint (route, body size, auth, parse). */
export function oauthErrorBody(error: MeshauthError): {
  error: OAuthErrorCode;
  error_description: string;
  code: string;
} {
  const tagged = error.detail?.oauthError;
  const oauthError: OAuthErrorCode =
    typeof tagged === 'string'
      ? (tagged as OAuthErrorCode)
      : error.status >= 500
        ? 'server_error'
        : error.code === 'MESHAUTH_ERR_CA_UNAUTHENTICATED'
          ? 'invalid_client'
          : 'invalid_request';
  // A refusal with a description of its own says it; any other client-authentication failure gets one generic line.
  const description =
    DESCRIPTIONS[error.reason ?? ''] ??
    (oauthError === 'invalid_client'
      ? 'client authentication failed: present a valid X509-SVID of this trust domain in the TLS handshake'
      : error.publicMessage);
  return { error: oauthError, error_description: description, code: error.code };
}

/**
 * The caller's X509-SVID ends sooner than the shortest JWT-SVID worth issuing (`JWT_SVID_MIN_TTL_MS`): a token is
 * never valid past the certificate it was asked with, and one of a few seconds expires before it can be used. The
 * workload renews first (its agent does so at half the SVID's life).
 */
export function svidEndsTooSoon(remainingMs: number): MeshauthError {
  return new MeshauthError(
    'MESHAUTH_ERR_CA_UNAUTHENTICATED',
    `the client certificate expires in ${Math.max(0, Math.floor(remainingMs / 1000))} s: renew it before asking for a token`,
    { reason: 'client_cert_expiring', detail: { oauthError: 'invalid_client' } },
  );
}

export function clientIdMismatch(): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_CA_UNAUTHENTICATED', 'client_id does not match the client certificate', {
    reason: 'client_id_mismatch',
    detail: { oauthError: 'invalid_client' },
  });
}

function checkAudience(audience: string): void {
  if (audience.length > MAX_AUDIENCE_LENGTH || !AUDIENCE_SHAPE.test(audience)) {
    throw badRequest('invalid_target', 'audience_invalid');
  }
}

function checkResource(resource: string): void {
  checkAudience(resource);
  let url: URL;
  try {
    url = new URL(resource);
  } catch {
    throw badRequest('invalid_target', 'resource_invalid');
  }
  if (url.hash !== '' || resource.includes('#')) throw badRequest('invalid_target', 'resource_invalid');
}

function badRequest(oauthError: Exclude<OAuthErrorCode, 'invalid_client' | 'server_error'>, reason: string) {
  return new MeshauthError('MESHAUTH_ERR_CA_BAD_REQUEST', DESCRIPTIONS[reason] ?? reason, {
    reason,
    detail: { oauthError },
  });
}
