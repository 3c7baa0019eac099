// The HTTP answer to a refused end-user token: 401 `Bearer error="invalid_token"`
// for a bad token, 401 `Bearer` without an error for a missing one, 400 `invalid_request` for a malformed header.
// The body is the fixed public sentence only; the reason stays in the log and the metric.
import { isMeshauthError, MeshauthError } from '../errors/index.js';

export interface BearerChallenge {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  /** JSON text `{code, message}`. */
  readonly body: string;
}

const REALM = 'meshauth';
const TOKEN_CODES: ReadonlySet<string> = new Set([
  'MESHAUTH_ERR_TOKEN_MISSING',
  'MESHAUTH_ERR_TOKEN_INVALID',
  'MESHAUTH_ERR_TOKEN_REQUEST_MALFORMED',
]);

function challengeHeader(error: MeshauthError): string {
  switch (error.code) {
    case 'MESHAUTH_ERR_TOKEN_MISSING':
      // No error code when the request carried no authentication information.
      return `Bearer realm="${REALM}"`;
    case 'MESHAUTH_ERR_TOKEN_REQUEST_MALFORMED':
      return `Bearer realm="${REALM}", error="invalid_request"`;
    default:
      return `Bearer realm="${REALM}", error="invalid_token"`;
  }
}

/** Maps an error from extractBearer / EndUserVerifier to the response the sidecar sends. */
export function bearerChallenge(error: unknown): BearerChallenge {
  const known =
    isMeshauthError(error) && TOKEN_CODES.has(error.code)
      ? error
      : new MeshauthError('MESHAUTH_ERR_TOKEN_INVALID', 'token verification failed', { cause: error });
  const status = known.code === 'MESHAUTH_ERR_TOKEN_REQUEST_MALFORMED' ? 400 : 401;
  return {
    status,
    headers: {
      'content-type': 'application/json',
      'cache-control': 'no-store',
      'www-authenticate': challengeHeader(known),
    },
    body: JSON.stringify(known.toJSON()),
  };
}
