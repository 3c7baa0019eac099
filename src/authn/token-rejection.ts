// The bounded reasons an end-user token is refused (metric label `result`) and the one way to
// build the error. Every reason maps to MESHAUTH_ERR_TOKEN_INVALID: the client sees one fixed sentence.
import { MeshauthError } from '../errors/index.js';

export const TOKEN_REJECTION_REASONS = [
  'too_large',
  'format',
  'alg_not_allowed',
  'alg_key_mismatch',
  'forbidden_header',
  'crit',
  'typ',
  'issuer',
  'audience',
  'unknown_kid',
  // Several keys of the issuer match the token's kid (or it has none) and alg: the issuer's key set is ambiguous.
  'ambiguous_key',
  'jwks_unavailable',
  'signature',
  'expired',
  'not_yet_valid',
  // exp further ahead than inbound.endUser.maxTokenLifetime (token-lifetime.ts).
  'lifetime',
  'missing_exp',
  'missing_sub',
  'claims',
  // The user's claims are over the bound a voucher carries in a passport (claim-size.ts).
  'claims_too_large',
  // A token beside a passport (forwardOriginalToken) that names another user than the passport.
  'not_passport_user',
] as const;

export type TokenRejectionReason = (typeof TOKEN_REJECTION_REASONS)[number];

/** Context for the log line: never the token itself. `iss` and `kid` are truncated untrusted strings. */
export interface TokenRejectionDetail {
  readonly issuer?: string;
  readonly kid?: string;
  readonly alg?: string;
}

export function tokenInvalid(
  reason: TokenRejectionReason,
  message: string,
  detail: TokenRejectionDetail = {},
  cause?: unknown,
): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_TOKEN_INVALID', message, {
    reason,
    detail: { ...detail },
    ...(cause === undefined ? {} : { cause }),
  });
}
