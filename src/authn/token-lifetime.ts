// How far ahead an end-user token's `exp` may lie. A token is only as short-lived as its issuer made it, and one
// minted by mistake or by a compromised signer with `exp` years ahead would be vouched for until then: a voucher
// refuses it instead, as API gateways do with a maximum token lifetime. Pure.
import { type TokenRejectionDetail, tokenInvalid } from './token-rejection.js';

/**
 * The maximum token lifetime by default (`inbound.endUser.maxTokenLifetime`, the gateway's `limits.maxTokenLifetime`):
 * a day, longer than any access token an issuer hands out.
 */
export const MAX_TOKEN_LIFETIME_SECONDS = 24 * 60 * 60;

/**
 * Refuses (`lifetime`) a token whose `exp` is more than `maxSeconds` plus the clock skew after now, and (`claims`)
 * one whose `iat` or `nbf` lies before 1970: neither is a time an issuer writes. Counted from now rather than from
 * `iat`, which a token need not carry.
 */
export function checkTokenLifetime(
  payload: { readonly exp?: unknown; readonly iat?: unknown; readonly nbf?: unknown },
  nowSeconds: number,
  maxSeconds: number,
  skewSeconds: number,
  detail: TokenRejectionDetail,
): void {
  if (typeof payload.exp === 'number' && payload.exp - nowSeconds > maxSeconds + skewSeconds) {
    throw tokenInvalid('lifetime', `exp is more than ${maxSeconds} s ahead (the maximum token lifetime)`, detail);
  }
  for (const claim of ['iat', 'nbf'] as const) {
    const value = payload[claim];
    if (typeof value === 'number' && value < 0) throw tokenInvalid('claims', `${claim} is before 1970`, detail);
  }
}
