// Deciding whether the CA's answer may become our credential: the chain must be a valid
// X509-SVID of our trust domain leading to a root of the returned bundle, the leaf must carry OUR public key, and a
// renewal must keep our SPIFFE ID. Anything else is rejected and the current credential stays.
// No I/O: the key comparison uses node:crypto KeyObjects only.
import { createPublicKey, KeyObject } from 'node:crypto';
import { MAX_BUNDLE_CERTIFICATES } from '../config/bundle-trust-domain.js';
import { isMeshauthError, MeshauthError } from '../errors/index.js';
import type { SpiffeId, TrustDomain } from '../identity/index.js';
import {
  certificateDerOfPemBlock,
  certificatePemBlocks,
  certificateSpkiDer,
  type KeyType,
  parseCertificatesPemOnce,
  spkiDerOf,
  TrustBundle,
  validateX509SvidLeafDer,
  X509Svid,
} from '../pki/index.js';
import type { Credentials } from './credential-holder.js';

export interface AcceptOptions {
  readonly trustDomain: TrustDomain;
  /** The public key we put in the CSR, and the private key that goes with it. */
  readonly publicKey: CryptoKey | KeyObject;
  /**
   * `publicKey` as the SPKI DER of the CSR it was written into (the caller made both from one key): compared byte for
   * byte, no export. Trusted as given, so it must never come from anywhere else.
   */
  readonly spkiDer?: Uint8Array;
  readonly privateKeyPem: string;
  readonly keyType: KeyType;
  /** On renewal: the ID the new SVID must carry. */
  readonly expectedId?: SpiffeId;
  readonly now: Date;
}

/** Turns a CA answer into credentials, or throws MESHAUTH_ERR_CA_RESPONSE_INVALID with a bounded `reason`. */
export function acceptSvidResponse(
  response: { readonly certChainPem: readonly string[]; readonly bundlePem: readonly string[] },
  options: AcceptOptions,
): Credentials {
  // The leaf is new every time and is read from its DER; the intermediates after it are the same for every SVID of
  // this CA (parsed once and cached).
  const [leafPem, ...rest] = response.certChainPem;
  const { leafDer, alsoInLeafPem } = guard('malformed', () => splitLeafPem(leafPem ?? ''));
  const after = guard('malformed', () => [...alsoInLeafPem, ...rest].flatMap((pem) => parseCertificatesPemOnce(pem)));
  const bundle = parseBundle(options.trustDomain, response.bundlePem);
  // The CA should send leaf + intermediates; a root tacked on at the end is harmless but not part of the SVID.
  const intermediates = after.filter((cert) => !bundle.hasRoot(cert));
  // Same rules as validateX509Svid; the leaf's facts are read from its DER (no second pass over its extensions).
  const leaf = guard('svid', () => validateX509SvidLeafDer(leafDer, intermediates, bundle, options.now));
  if (!samePublicKey(leafDer, options.publicKey, options.spkiDer)) {
    throw invalid('the certificate does not carry the public key of our CSR', 'wrong_key');
  }
  if (options.expectedId !== undefined && !leaf.id.equals(options.expectedId)) {
    throw invalid(`the CA returned ${leaf.id}, expected ${options.expectedId}`, 'id_changed');
  }
  // Peers refuse the chain once a certificate above the leaf expires, whatever the leaf says: our CA clamps a leaf to
  // its intermediate, a broken one may not. The SVID lasts as long as its validated path, the root it ends at
  // included, so renewal, readiness and the expiry gauge go by that, and a 10-year leaf under a 30-day intermediate is
  // renewed before the intermediate ends.
  const notAfter = new Date(Math.min(leaf.issuersNotAfter.getTime(), leaf.notAfter.getTime()));
  const svid = new X509Svid({
    id: leaf.id,
    leafDer,
    notBefore: leaf.notBefore,
    notAfter,
    intermediates,
    privateKeyPem: options.privateKeyPem,
    keyType: options.keyType,
  });
  return { svid, bundle };
}

/** The first certificate of a PEM text as DER, and the text of any further blocks in it. */
function splitLeafPem(pem: string): { leafDer: Uint8Array; alsoInLeafPem: string[] } {
  const [first, ...more] = certificatePemBlocks(pem);
  if (first === undefined) {
    throw new MeshauthError('MESHAUTH_ERR_SVID_MALFORMED', 'no PEM certificate found', { reason: 'no_certificate' });
  }
  return { leafDer: certificateDerOfPemBlock(first), alsoInLeafPem: more };
}

/** A bundle from the CA: every entry a parseable CA certificate, labelled with our trust domain. */
export function parseBundle(trustDomain: TrustDomain, bundlePem: readonly string[]): TrustBundle {
  const roots = guard('malformed', () => bundlePem.flatMap((pem) => parseCertificatesPemOnce(pem)));
  if (roots.length === 0) throw invalid('empty trust bundle', 'empty_bundle');
  // A CA's bundle holds its current root and those of a rotation (previous, next): a few. Every root held is compared
  // with every other at each refresh, and one a later bundle drops is remembered, so a CA sending hundreds would cost
  // the sidecar's event loop seconds per refresh and its memory without end.
  if (roots.length > MAX_BUNDLE_CERTIFICATES) {
    throw invalid(
      `the trust bundle holds ${roots.length} certificates, more than ${MAX_BUNDLE_CERTIFICATES}`,
      'malformed',
    );
  }
  return new TrustBundle(trustDomain, roots);
}

/**
 * Our key in the certificate. Equal SPKI bytes settle it at once (the usual case: the CA copies the CSR's SPKI);
 * otherwise the keys are compared as keys, not as encodings (a CA may re-encode the SPKI it copied).
 */
function samePublicKey(
  leafDer: Uint8Array,
  publicKey: CryptoKey | KeyObject,
  spkiDer: Uint8Array | undefined,
): boolean {
  try {
    const theirs = certificateSpkiDer(leafDer);
    if (theirs === undefined) return false;
    const ours = publicKey instanceof KeyObject ? publicKey : KeyObject.from(publicKey);
    if (theirs.equals(spkiDer ?? spkiDerOf(ours))) return true;
    return createPublicKey({ key: theirs, format: 'der', type: 'spki' }).equals(ours);
  } catch {
    return false;
  }
}

function guard<T>(reason: string, run: () => T): T {
  try {
    return run();
  } catch (cause) {
    if (isMeshauthError(cause)) {
      // Keep the validator's bounded reason (unknown_ca, trust_domain, expired, …) and its code in the detail.
      throw new MeshauthError('MESHAUTH_ERR_CA_RESPONSE_INVALID', `CA response rejected: ${cause.message}`, {
        reason: cause.reason ?? reason,
        detail: { validation: cause.code },
        cause,
      });
    }
    throw invalid(`CA response rejected: ${String(cause)}`, reason);
  }
}

function invalid(message: string, reason: string): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_CA_RESPONSE_INVALID', message, { reason });
}
