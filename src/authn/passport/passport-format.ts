// The passport wire format. Between sidecars the header holds exactly two compact JWS:
//   x-meshauth-passport: <link>,<origin>
// The origin is minted where the external token was validated (a listener allowed to vouch for end users). It is
// the voucher's statement about the end user, addressed to itself (`aud` = `iss`): it carries the user's claims
// (`usr`), the expiry of the user's token (`uex`), and `x5c` = the voucher's leaf + intermediate, so every later hop
// can check it against the trust bundle. The voucher hands it to its own app alone (one JWS); when the app calls
// downstream, each sidecar on the way mints a fresh link signed with its own SVID key: `aud` = the next hop,
// `cnf.x5t#S256` = its leaf thumbprint, the call chain as nested `act` claims (first actor =
// the voucher), and `org` = SHA-256 of the origin it carries. The receiver checks the link against its mTLS peer
// (so the link needs no x5c) and the origin against the bundle, so the header does not grow with depth.
// Explicit typing (`typ`) keeps passports and end-user tokens apart.

export const PASSPORT_HEADER = 'x-meshauth-passport';
export const PASSPORT_TYP = 'meshauth-passport+jwt';
/** Lifetime of a freshly minted passport; at most 60 s, so a stolen one is soon useless. */
export const PASSPORT_TTL_SECONDS = 30;
export const MAX_PASSPORT_TTL_SECONDS = 60;
export const DEFAULT_MAX_DEPTH = 8;

/** The token-exchange actor claim: `sub` is the current actor, nested `act` the ones before it. */
export interface ActorClaim {
  readonly sub: string;
  readonly act?: ActorClaim;
}

export interface PassportClaims {
  /** SPIFFE ID of the signing sidecar. */
  readonly iss: string;
  /** SPIFFE ID of the hop this passport is addressed to. */
  readonly aud: string;
  readonly iat: number;
  readonly exp: number;
  readonly jti: string;
  readonly cnf: { readonly 'x5t#S256': string };
  readonly act: ActorClaim;
  /** base64url SHA-256 of the origin JWS; present on links, absent on the origin itself. */
  readonly org?: string;
  /** The verified end-user claims; present only on the origin passport. */
  readonly usr?: Readonly<Record<string, unknown>>;
  /** Expiry (seconds) of the end user's original token; present only on the origin passport. */
  readonly uex?: number;
}

/** Depth of the `act` nesting (1 for a passport minted by the origin). */
export function actDepth(act: ActorClaim | undefined): number {
  let depth = 0;
  for (let a = act; a !== undefined; a = a.act) depth++;
  return depth;
}

/** The `act` chain as a list, first hop first (the order apps and policy `when.chain` use). */
export function actChain(act: ActorClaim): string[] {
  const newestFirst: string[] = [];
  for (let a: ActorClaim | undefined = act; a !== undefined; a = a.act) newestFirst.push(a.sub);
  return newestFirst.reverse();
}
