// The verified end user as the rest of meshauth sees it: what policy `when.user` reads (sub, iss, client_id,
// scope, groups) and what the app receives in `x-meshauth-user` (sub, iss + configured claims).
// Pure: built from claims that were already verified.

/** Claims the policy engine may match on, copied whenever the token carries them (`when.user`). */
export const POLICY_CLAIMS = ['sub', 'iss', 'client_id', 'scope', 'groups'] as const;

export interface EndUser {
  readonly sub: string;
  readonly iss: string;
  /** Policy view: sub, iss, client_id, scope, groups when present, plus the configured claims. */
  readonly claims: Readonly<Record<string, unknown>>;
  /** The `x-meshauth-user` view: sub, iss and the configured claims present in the token. */
  readonly exposed: Readonly<Record<string, unknown>>;
  /** `exp` of the token, seconds since the epoch (a passport must not outlive it). */
  readonly expiresAt: number;
}

/**
 * Builds an EndUser from verified claims. `sub` falls back to `client_id` for client-credentials tokens
 * (without a resource owner, `sub` identifies the client). Returns undefined when neither exists
 * or when `sub` is present but not a non-empty string.
 */
export function endUserFromClaims(
  verified: Readonly<Record<string, unknown>>,
  configuredClaims: readonly string[],
): EndUser | undefined {
  const { iss, client_id: clientId, exp } = verified;
  // A `sub` that is present must be a non-empty string: a malformed one (an empty one too) is never replaced by
  // client_id, or `{sub: "", client_id: "alice"}` would become the user alice.
  if (verified.sub !== undefined && (typeof verified.sub !== 'string' || verified.sub === '')) return undefined;
  const sub = verified.sub ?? clientId;
  if (typeof sub !== 'string' || sub === '' || typeof iss !== 'string') return undefined;
  const claims: Record<string, unknown> = { sub, iss };
  const exposed: Record<string, unknown> = { sub, iss };
  for (const name of POLICY_CLAIMS) {
    if (name !== 'sub' && name !== 'iss' && Object.hasOwn(verified, name)) claims[name] = verified[name];
  }
  for (const name of configuredClaims) {
    if (name === 'sub' || name === 'iss' || !Object.hasOwn(verified, name)) continue;
    claims[name] = verified[name];
    exposed[name] = verified[name];
  }
  return Object.freeze({
    sub,
    iss,
    claims: Object.freeze(claims),
    exposed: Object.freeze(exposed),
    expiresAt: typeof exp === 'number' ? exp : 0,
  });
}

/** The `x-meshauth-user` header value: base64url of the JSON of `user.exposed`. */
export function userHeaderValue(user: EndUser): string {
  return Buffer.from(JSON.stringify(user.exposed), 'utf8').toString('base64url');
}

/** Decodes an `x-meshauth-user` value (for apps and tests); undefined when it is not base64url JSON object. */
export function parseUserHeader(value: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
