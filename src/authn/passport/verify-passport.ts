// Verifying a received passport. The newest JWS must be signed by the mTLS peer itself (checked with the
// peer's certificate key; `cnf.x5t#S256` = the peer's leaf thumbprint), addressed to this sidecar and
// short-lived. The origin must chain to the trust bundle, be signed by an allowed voucher, be the one the link
// names (`org`), be addressed to its own signer, and agree with the link's `act` chain (first actor = origin signer).
// Hops between the first and the peer are asserted by the peer's link alone (see docs/policy.md `when.chain`), yet
// each must still be a workload of the bundle's trust domain: meshauth has no federation, so no honest peer names
// another.
import type { KeyObject } from 'node:crypto';
import { MeshauthError } from '../../errors/index.js';
import { SpiffeId } from '../../identity/index.js';
import { parseCertificateDerOnce, type TrustBundle, validateX509SvidLeafDer } from '../../pki/index.js';
import { type EndUser, endUserFromClaims } from '../end-user.js';
import { type DecodedJws, decodeCompact, verifyCompact } from './compact-jws.js';
import type { ReceivedPassport } from './mint-passport.js';
import {
  type ActorClaim,
  actChain,
  actDepth,
  DEFAULT_MAX_DEPTH,
  MAX_PASSPORT_TTL_SECONDS,
  PASSPORT_TYP,
  type PassportClaims,
} from './passport-format.js';
import { leafKeyOf, sha256Base64url } from './signer-cache.js';

const MAX_PASSPORT_BYTES = 16 * 1024;
const ORIGIN_HEADER: ReadonlySet<string> = new Set(['alg', 'typ', 'x5c']);
const LINK_HEADER: ReadonlySet<string> = new Set(['alg', 'typ']);

export interface PassportVerifyContext {
  /** This sidecar's own SPIFFE ID: the `aud` of the newest JWS. */
  readonly self: SpiffeId;
  /** The authenticated mTLS peer: its ID, its leaf's public key and base64url SHA-256 thumbprint (DER). */
  readonly peerId: SpiffeId;
  readonly peerKey: KeyObject;
  readonly peerThumbprint: string;
  readonly bundle: TrustBundle;
  /** SPIFFE IDs allowed to vouch for end users (`inbound.endUser.vouchers`). */
  readonly vouchers: ReadonlySet<string>;
  /** Claims exposed to the app in `x-meshauth-user` (`inbound.endUser.claims`). */
  readonly claims: readonly string[];
  readonly now: Date;
  readonly maxDepth?: number;
  readonly clockToleranceSeconds?: number;
}

export interface VerifiedPassport extends ReceivedPassport {
  readonly user: EndUser;
  /** The caller chain, first hop first; its last element is the mTLS peer. */
  readonly chain: readonly string[];
  /** Expiry (seconds) of the newest JWS. */
  readonly expiresAt: number;
  /** Expiry (seconds) of the origin: a link minted after it is refused by the next hop. */
  readonly originExpiresAt: number;
}

export type PassportRejectionReason =
  | 'too_large'
  | 'too_deep'
  | 'format'
  | 'signature'
  | 'signer_not_peer'
  | 'cnf_mismatch'
  | 'audience'
  | 'expired'
  | 'lifetime'
  | 'untrusted_signer'
  | 'chain_broken'
  | 'act_mismatch'
  | 'chain_foreign_hop'
  | 'not_vouched'
  | 'no_user';

export function verifyPassport(value: string, context: PassportVerifyContext): VerifiedPassport {
  if (value.length > MAX_PASSPORT_BYTES) reject('too_large', 'passport header is larger than 16 KiB');
  const parts = value.split(',');
  if (parts.length !== 2) reject('format', 'a passport between sidecars is a link and its origin');
  const [linkJws, originJws] = parts as [string, string];
  const tolerance = context.clockToleranceSeconds ?? 5;
  const nowSeconds = context.now.getTime() / 1000;
  const seen = seenLink(value, context);
  const claims =
    seen === undefined
      ? verifyLink(linkJws, originJws, context, nowSeconds, tolerance)
      : checkLinkUse(seen, context, nowSeconds, tolerance);

  // The origin: signed by a voucher of the trust domain, about the end user, addressed to itself. Valid when the
  // link was signed, and still now: the link's signer chooses its `iat`, so a link dated at the end of the origin's
  // life would otherwise carry the origin for a whole link lifetime past its own `exp`.
  const origin = verifyOrigin(originJws, context, claims.iat, tolerance);
  if (origin.exp + tolerance < nowSeconds) reject('expired', 'the origin passport has expired');
  const chain = actChain(claims.act);
  if (chain[0] !== origin.iss) reject('act_mismatch', 'passport act chain does not start at its origin');
  // Only the first hop (against the bundle) and the peer (in the handshake) are proven; every honest sidecar in
  // between is a workload of the same trust domain, so a hop of another one, or a bare trust-domain ID, can only
  // come from a compromised or buggy peer and would reach `when.chain` rules as a call path no request took.
  const foreignHop = chain.find((hop) => SpiffeId.tryParse(hop)?.isWorkloadOf(context.bundle.trustDomain) !== true);
  if (foreignHop !== undefined) {
    reject(
      'chain_foreign_hop',
      `passport call chain names ${foreignHop.slice(0, 200)}, not a workload of trust domain ${context.bundle.trustDomain.name}`,
    );
  }
  if (origin.aud !== origin.iss || origin.org !== undefined || origin.act.act !== undefined) {
    reject('format', 'the origin passport must be addressed to its own signer and have no predecessor');
  }
  if (origin.usr === undefined || typeof origin.uex !== 'number')
    reject('no_user', 'the origin passport carries no end user');
  if (origin.uex < nowSeconds - tolerance) reject('expired', "the end user's token has expired");
  if (!context.vouchers.has(origin.iss)) reject('not_vouched', `${origin.iss} is not allowed to vouch for end users`);
  const user = endUserFromClaims({ ...origin.usr, exp: origin.uex }, context.claims);
  if (user === undefined) reject('no_user', 'the origin passport carries no valid end user');
  if (seen === undefined) rememberLink(value, claims);
  return {
    raw: value,
    origin: originJws,
    act: claims.act,
    userExpiresAt: origin.uex,
    user,
    chain,
    expiresAt: claims.exp,
    originExpiresAt: origin.exp,
  };
}

/** Header text of the passports whose links are kept, in all: ~2,300 honest passports of 3.2–3.7 KB. */
const MAX_CACHED_LINK_BYTES = 8 * 1024 * 1024;

// A sender hands out one link per origin and next hop for many requests (sharedLink), so a receiver keeps the links
// of passports that verified, by the whole header value (so the origin each link names is the one it came with). Only
// whole passports that verified are kept: a peer sending links it signed itself beside origins nobody vouched for
// must leave nothing behind. Bounded by the bytes of header text, cleared when full, as the origins are.
const verifiedLinks = new Map<string, PassportClaims>();
let verifiedLinkBytes = 0;

/**
 * The claims of this passport's link if its signature, shape and `org` held before for the certificate this peer
 * presents: `cnf` is the thumbprint of the leaf whose key checked the signature, so the same thumbprint is the same
 * key. Another peer (a replay) gets the whole check, and the same refusal as before it was kept.
 */
function seenLink(value: string, context: PassportVerifyContext): PassportClaims | undefined {
  const claims = verifiedLinks.get(value);
  return claims?.cnf['x5t#S256'] === context.peerThumbprint ? claims : undefined;
}

function rememberLink(value: string, claims: PassportClaims): void {
  if (verifiedLinkBytes + value.length > MAX_CACHED_LINK_BYTES) {
    verifiedLinks.clear();
    verifiedLinkBytes = 0;
  }
  verifiedLinks.set(value, claims);
  verifiedLinkBytes += value.length;
}

/** The link: signed by the mTLS peer, for us, now, naming this origin. */
function verifyLink(
  linkJws: string,
  originJws: string,
  context: PassportVerifyContext,
  nowSeconds: number,
  tolerance: number,
): PassportClaims {
  const link = decode(linkJws, LINK_HEADER);
  if (!verifyCompact(link, context.peerKey)) reject('signature', 'passport signature is invalid');
  const claims = checkLinkUse(checkShape(link), context, nowSeconds, tolerance);
  if (claims.org !== sha256Base64url(originJws)) reject('chain_broken', 'passport link does not name this origin');
  return claims;
}

/** What a link must be at each use: signed by this peer, addressed to us, valid now, no deeper than allowed. */
function checkLinkUse(
  claims: PassportClaims,
  context: PassportVerifyContext,
  nowSeconds: number,
  tolerance: number,
): PassportClaims {
  checkSigner(claims, context.peerId.toString(), context.peerThumbprint);
  checkTimes(claims, nowSeconds, tolerance);
  if (claims.aud !== context.self.toString()) reject('audience', `passport is addressed to ${String(claims.aud)}`);
  const depth = actDepth(claims.act);
  const maxDepth = context.maxDepth ?? DEFAULT_MAX_DEPTH;
  if (depth > maxDepth) {
    throw new MeshauthError(
      'MESHAUTH_ERR_PASSPORT_TOO_DEEP',
      `passport call chain has ${depth} hops; the limit is ${maxDepth}`,
      {
        reason: 'too_deep',
      },
    );
  }
  return claims;
}

const MAX_CACHED_ORIGINS = 4096;

interface VerifiedOrigin {
  readonly claims: PassportClaims;
  /** Earliest notAfter (ms) of the signer and its validated path, the root included: past it the signer is validated again. */
  readonly certificatesValidUntil: number;
}

// Keyed by the bundle object itself, not its trust-domain name: a rotated bundle (a root removed) or another
// bundle for the same name must validate the signer again, never inherit a result computed against other roots.
const verifiedOrigins = new WeakMap<TrustBundle, Map<string, VerifiedOrigin>>();

/** Checks an origin against the bundle; results are cached per bundle and origin JWS (one origin serves a chain). */
function verifyOrigin(jws: string, context: PassportVerifyContext, linkIat: number, tolerance: number): PassportClaims {
  let cache = verifiedOrigins.get(context.bundle);
  if (cache === undefined) {
    cache = new Map();
    verifiedOrigins.set(context.bundle, cache);
  }
  const cached = cache.get(jws);
  if (cached !== undefined && context.now.getTime() <= cached.certificatesValidUntil) {
    // The signature and signer hold; the times depend on this link. An origin must have been valid when the link
    // naming it was minted.
    checkTimes(cached.claims, linkIat, tolerance);
    return cached.claims;
  }
  const decoded = decode(jws, ORIGIN_HEADER);
  const x5c = x5cOf(decoded);
  let signer: string;
  let leaf: ReturnType<typeof leafKeyOf>;
  let certificatesValidUntil: number;
  try {
    // The leaf is read from its DER (the rules of validateX509Svid, without a full parse) and the intermediates
    // through the parse-once cache: every origin of every voucher of a trust domain carries the same intermediate,
    // and a full parse of both took about 3 ms per origin.
    const [leafDer, ...issuerDers] = x5c.map((c) => Buffer.from(c, 'base64'));
    const issuers = issuerDers.map((der) => parseCertificateDerOnce(der));
    const validated = validateX509SvidLeafDer(leafDer as Buffer, issuers, context.bundle, context.now);
    signer = validated.id.toString();
    // Only after validation: a non-certificate x5c must end as a passport rejection, not a parser error.
    leaf = leafKeyOf(x5c[0] as string);
    certificatesValidUntil = Math.min(validated.notAfter.getTime(), validated.issuersNotAfter.getTime());
  } catch (cause) {
    reject('untrusted_signer', 'the origin passport signer is not trusted', cause);
  }
  if (!verifyCompact(decoded, leaf.key)) reject('signature', 'origin passport signature is invalid');
  const claims = checkShape(decoded);
  checkSigner(claims, signer, leaf.thumbprint);
  checkTimes(claims, linkIat, tolerance);
  if (cache.size >= MAX_CACHED_ORIGINS) cache.clear();
  cache.set(jws, { claims, certificatesValidUntil });
  return claims;
}

/** Claim rules of links and origins that depend on the JWS alone: type, fields, audience form, lifetime, actor. */
function checkShape(decoded: DecodedJws): PassportClaims {
  if (decoded.header.typ !== PASSPORT_TYP) reject('format', 'passport typ is wrong');
  const claims = decoded.payload as unknown as PassportClaims;
  if (typeof claims.iat !== 'number' || typeof claims.exp !== 'number' || typeof claims.jti !== 'string') {
    reject('format', 'passport lacks iat, exp or jti');
  }
  if (typeof claims.aud !== 'string') reject('audience', 'passport aud must be a single SPIFFE ID');
  if (claims.exp - claims.iat > MAX_PASSPORT_TTL_SECONDS) reject('lifetime', 'passport lifetime exceeds 60 s');
  if (!isActor(claims.act)) reject('act_mismatch', 'passport act.sub is not its signer');
  return claims;
}

/** Signed by `signer`, bound to its certificate (`thumbprint`), and naming it as the current actor. */
function checkSigner(claims: PassportClaims, signer: string, thumbprint: string): void {
  if (claims.iss !== signer) reject('signer_not_peer', 'passport iss is not its signer');
  if (claims.cnf?.['x5t#S256'] !== thumbprint)
    reject('cnf_mismatch', 'passport cnf does not match its signer certificate');
  if (claims.act.sub !== signer) reject('act_mismatch', 'passport act.sub is not its signer');
}

/** Valid at `atSeconds` (now for a link, the link's `iat` for its origin), within the clock tolerance. */
function checkTimes(claims: PassportClaims, atSeconds: number, tolerance: number): void {
  if (claims.exp + tolerance < atSeconds) reject('expired', 'passport expired');
  if (claims.iat - tolerance > atSeconds) reject('expired', 'passport issued in the future');
}

function decode(jws: string, allowedHeader: ReadonlySet<string>): DecodedJws {
  const decoded = decodeCompact(jws, allowedHeader);
  if (decoded === undefined) reject('format', 'passport is not a strict compact JWS with allowed header parameters');
  return decoded;
}

function x5cOf(decoded: DecodedJws): readonly string[] {
  const x5c = decoded.header.x5c;
  if (!Array.isArray(x5c) || x5c.length === 0 || x5c.length > 3 || !x5c.every((c) => typeof c === 'string')) {
    reject('format', 'origin passport x5c header must hold 1 to 3 certificates');
  }
  return x5c as string[];
}

function isActor(value: unknown): value is ActorClaim {
  if (typeof value !== 'object' || value === null) return false;
  const actor = value as { sub?: unknown; act?: unknown };
  return (
    typeof actor.sub === 'string' &&
    SpiffeId.tryParse(actor.sub) !== undefined &&
    (actor.act === undefined || isActor(actor.act))
  );
}

function reject(reason: PassportRejectionReason, message: string, cause?: unknown): never {
  throw new MeshauthError('MESHAUTH_ERR_PASSPORT_INVALID', message, { reason, cause });
}
