// X509-SVID validation. Pure: no I/O, time comes in as `now`.
// checkSvidLeaf() enforces the leaf rules only; it is what the TLS listeners run after OpenSSL has verified the
// chain in the handshake. validateX509Svid() adds path validation against a bundle, for chains that did
// not come through a TLS handshake (passport x5c headers, CA renewal checks, `cert inspect`).
import { X509Certificate as NodeX509Certificate } from 'node:crypto';
import { MeshauthError } from '../errors/index.js';
import { SpiffeId, type TrustDomain } from '../identity/index.js';
import { parseCertificate, uriSans } from './certificates.js';
import { certificateValidityDer, plainLeafFacts } from './leaf-der.js';
import { hostAllowed, uriConstraints } from './name-constraints.js';
import { parseCertificateDerOnce } from './parsed-once.js';
import type { TrustBundle } from './trust-bundle.js';
import { x509 } from './x509.js';

const MAX_CHAIN_LENGTH = 5;

/** Checks the X509-SVID leaf rules and returns the leaf's SPIFFE ID. */
export function checkSvidLeaf(leaf: x509.X509Certificate, trustDomain: TrustDomain, now: Date): SpiffeId {
  return checkLeafFacts(leafFactsOf(leaf), trustDomain, now);
}

/**
 * checkSvidLeaf for a leaf given as DER whose chain OpenSSL has verified (a TLS peer's), also returning its validity
 * window: read straight from the DER when it has the plain shape meshauth issues (leaf-der.ts), with the same rules;
 * any other leaf is parsed as before. Parsing a leaf through @peculiar/x509 was most of the inbound's per-handshake
 * peer check. `likelyIssuer` is the certificate the peer sent above the leaf (DER, parsed once per DER) or one the
 * caller holds parsed (the CA's current intermediate): the plain reading needs the leaf's issuer name to be its
 * subject.
 */
export function checkSvidLeafDer(
  leafDer: Uint8Array,
  likelyIssuer: Uint8Array | x509.X509Certificate | undefined,
  trustDomain: TrustDomain,
  now: Date,
): ValidatedLeaf {
  const issuer =
    likelyIssuer === undefined || likelyIssuer instanceof x509.X509Certificate
      ? likelyIssuer
      : parsedOrUndefined(likelyIssuer);
  const facts =
    (issuer === undefined ? undefined : plainLeafFacts(leafDer, [issuer])) ?? leafFactsOf(parseCertificate(leafDer));
  return { id: checkLeafFacts(facts, trustDomain, now), notBefore: facts.notBefore, notAfter: facts.notAfter };
}

/** An issuer @peculiar/x509 cannot parse only sends its leaf to the general path; the chain check judges it. */
function parsedOrUndefined(der: Uint8Array): x509.X509Certificate | undefined {
  try {
    return parseCertificateDerOnce(der);
  } catch {
    return undefined;
  }
}

/** What the leaf rules look at, read from a parsed certificate or (leaf-der.ts) straight from its DER. */
export interface LeafFacts {
  readonly uris: readonly string[];
  /** The basicConstraints cA flag; undefined without the extension. */
  readonly ca: boolean | undefined;
  /** null without the keyUsage extension. */
  readonly keyUsage: { readonly critical: boolean; readonly usages: number } | null;
  /** Extended key usage OIDs; null without the extension. */
  readonly extKeyUsage: readonly string[] | null;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

function leafFactsOf(leaf: x509.X509Certificate): LeafFacts {
  return readable(() => parsedLeafFacts(leaf));
}

/**
 * @peculiar/x509 parses an extension's value on first access and throws a plain Error when it does not match its
 * schema (a constructed URI name, a keyUsage that is no BIT STRING): that is a malformed certificate, not an
 * internal error.
 */
function readable<T>(read: () => T): T {
  try {
    return read();
  } catch (cause) {
    if (cause instanceof MeshauthError) throw cause;
    throw new MeshauthError('MESHAUTH_ERR_SVID_MALFORMED', 'certificate extension cannot be parsed', {
      reason: 'malformed',
      cause,
    });
  }
}

/**
 * Extensions a relying party may meet critical in any certificate of a chain: the ones OpenSSL 3's verifier
 * recognizes (X509_supported_extension; its IP and AS delegation ones excepted), since
 * a certificate with a critical extension the verifier does not recognize must be rejected.
 */
const PROCESSED_EXTENSIONS = new Set([
  '2.5.29.15', // keyUsage
  '2.5.29.17', // subjectAltName
  '2.5.29.19', // basicConstraints
  '2.5.29.30', // nameConstraints
  '2.5.29.31', // cRLDistributionPoints
  '2.5.29.32', // certificatePolicies
  '2.5.29.33', // policyMappings
  '2.5.29.36', // policyConstraints
  '2.5.29.37', // extKeyUsage
  '2.5.29.54', // inhibitAnyPolicy
  '1.3.6.1.5.5.7.1.14', // proxyCertInfo
  '1.3.6.1.5.5.7.48.1.5', // OCSP no-check
  '2.16.840.1.113730.1.1', // Netscape certificate type
]);

/**
 * The leaf rules read the first instance of an extension; a second one (a certificate must hold each extension at
 * most once) or a critical one nobody processes would carry meaning this reader ignores. OpenSSL refuses both in
 * a handshake; chains validated outside one (renewal, x5c) must too.
 */
function checkExtensionSet(cert: x509.X509Certificate, which: 'leaf' | 'issuer' = 'leaf'): void {
  const seen = new Set<string>();
  for (const extension of cert.extensions) {
    if (seen.has(extension.type)) {
      fail(
        'MESHAUTH_ERR_SVID_MALFORMED',
        `${which} certificate repeats extension ${extension.type}`,
        'duplicate_extension',
      );
    }
    seen.add(extension.type);
    if (extension.critical && !PROCESSED_EXTENSIONS.has(extension.type)) {
      fail(
        'MESHAUTH_ERR_SVID_MALFORMED',
        `${which} certificate has an unknown critical extension ${extension.type}`,
        'unknown_critical_extension',
      );
    }
  }
}

function parsedLeafFacts(leaf: x509.X509Certificate): LeafFacts {
  checkExtensionSet(leaf);
  const usage = leaf.getExtension(x509.KeyUsagesExtension);
  const eku = leaf.getExtension(x509.ExtendedKeyUsageExtension);
  return {
    uris: uriSans(leaf),
    ca: leaf.getExtension(x509.BasicConstraintsExtension)?.ca,
    keyUsage: usage === null ? null : { critical: usage.critical, usages: usage.usages },
    extKeyUsage: eku === null ? null : eku.usages.map(String),
    ...validityOf(leaf),
  };
}

const validities = new WeakMap<x509.X509Certificate, { readonly notBefore: Date; readonly notAfter: Date }>();

/**
 * A certificate's validity as its DER says it (leaf-der.ts). A time in another form is malformed, as for OpenSSL; so
 * is a certificate that does not split as DER (a BER length anywhere): OpenSSL reads such a certificate, but prints a
 * time of another form as leniently as @peculiar/x509 misreads it, and a certificate must be DER.
 */
function validityOf(cert: x509.X509Certificate): { readonly notBefore: Date; readonly notAfter: Date } {
  let validity = validities.get(cert);
  if (validity === undefined) {
    const read = certificateValidityDer(new Uint8Array(cert.rawData));
    if (read === undefined) fail('MESHAUTH_ERR_SVID_MALFORMED', 'certificate is not DER', 'malformed');
    if (read === 'time_not_der') {
      fail('MESHAUTH_ERR_SVID_MALFORMED', 'certificate validity is not a DER UTCTime or GeneralizedTime', 'malformed');
    }
    validity = read;
    validities.set(cert, validity);
  }
  return validity;
}

function checkLeafFacts(leaf: LeafFacts, trustDomain: TrustDomain, now: Date): SpiffeId {
  const uris = leaf.uris;
  if (uris.length === 0) fail('MESHAUTH_ERR_SVID_NO_URI_SAN', 'leaf certificate has no URI SAN', 'no_uri_san');
  if (uris.length > 1)
    fail('MESHAUTH_ERR_SVID_MULTIPLE_URI_SAN', 'leaf certificate contains more than one URI SAN', 'multiple_uri_san');
  let id: SpiffeId;
  try {
    id = SpiffeId.parse(uris[0] as string);
  } catch (cause) {
    throw new MeshauthError('MESHAUTH_ERR_SPIFFE_ID_INVALID', `leaf URI SAN is not a valid SPIFFE ID`, {
      reason: 'invalid_spiffe_id',
      cause,
    });
  }
  if (id.isTrustDomainId) {
    fail('MESHAUTH_ERR_SPIFFE_ID_INVALID', 'leaf SPIFFE ID has no path (X509-SVID §3.1)', 'root_id_leaf');
  }
  if (!id.memberOf(trustDomain)) {
    fail(
      'MESHAUTH_ERR_SVID_TRUST_DOMAIN',
      `leaf SPIFFE ID ${id} is not in trust domain ${trustDomain}`,
      'trust_domain',
    );
  }
  if (leaf.ca === true) fail('MESHAUTH_ERR_SVID_LEAF_IS_CA', 'leaf certificate with CA flag set to true', 'leaf_is_ca');
  const usage = leaf.keyUsage;
  if (usage === null || !usage.critical) {
    fail('MESHAUTH_ERR_SVID_KEY_USAGE', 'leaf certificate has no critical key usage extension', 'bad_key_usage');
  }
  if ((usage.usages & x509.KeyUsageFlags.digitalSignature) === 0) {
    fail('MESHAUTH_ERR_SVID_KEY_USAGE', 'leaf certificate lacks digitalSignature key usage', 'bad_key_usage');
  }
  if ((usage.usages & (x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign)) !== 0) {
    fail('MESHAUTH_ERR_SVID_KEY_USAGE', 'leaf certificate has keyCertSign or cRLSign key usage', 'bad_key_usage');
  }
  const usages = leaf.extKeyUsage;
  if (usages !== null) {
    if (!usages.includes(x509.ExtendedKeyUsage.serverAuth) || !usages.includes(x509.ExtendedKeyUsage.clientAuth)) {
      fail(
        'MESHAUTH_ERR_SVID_EXT_KEY_USAGE',
        'leaf extended key usage must include serverAuth and clientAuth',
        'bad_ext_key_usage',
      );
    }
  }
  checkValidity(leaf, now, 'leaf');
  return id;
}

/** Full validation: leaf rules, then a path from the leaf through the given intermediates to a bundle root. */
export function validateX509Svid(chain: readonly x509.X509Certificate[], bundle: TrustBundle, now: Date): SpiffeId {
  return validateChain(chain, bundle, now).id;
}

function validateChain(chain: readonly x509.X509Certificate[], bundle: TrustBundle, now: Date): ValidatedPath {
  const leaf = chain[0];
  if (leaf === undefined) fail('MESHAUTH_ERR_SVID_CHAIN', 'empty certificate chain', 'empty_chain');
  if (chain.length > MAX_CHAIN_LENGTH) fail('MESHAUTH_ERR_SVID_CHAIN', 'certificate chain too long', 'chain_too_long');
  const id = checkSvidLeaf(leaf, bundle.trustDomain, now);
  return validatePath(id, leaf, toNode(leaf), chain.slice(1), bundle, now);
}

/** A path validated from a leaf to a bundle root. */
interface ValidatedPath {
  readonly id: SpiffeId;
  /**
   * The earliest NotAfter of the CA certificates on the path, the root it ends at included: peers refuse the chain
   * from then on, whatever the leaf says.
   */
  readonly issuersNotAfter: Date;
}

/** What validation proved about a leaf given as DER: its SPIFFE ID and validity window. */
export interface ValidatedLeaf {
  readonly id: SpiffeId;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** A leaf given as DER validated with its path to a bundle root. */
export interface ValidatedSvidLeaf extends ValidatedLeaf, ValidatedPath {}

/**
 * validateX509Svid for a leaf given as DER (a TLS peer's): the leaf's facts are read from the DER directly when it
 * has the plain shape meshauth issues (leaf-der.ts), with exactly the same rules; any other leaf is parsed and
 * validated as by validateX509Svid. `issuers` are the intermediates the peer sent, already parsed.
 */
export function validateX509SvidDer(
  leafDer: Uint8Array,
  issuers: readonly x509.X509Certificate[],
  bundle: TrustBundle,
  now: Date,
  leafNode?: NodeX509Certificate,
): SpiffeId {
  return validateX509SvidLeafDer(leafDer, issuers, bundle, now, leafNode).id;
}

/**
 * validateX509SvidDer, also returning the leaf's validity window (so a caller need not parse the leaf for it).
 * `leafNode`, when the caller already holds the leaf as a node:crypto certificate of the same DER, is used instead
 * of parsing it again.
 */
export function validateX509SvidLeafDer(
  leafDer: Uint8Array,
  issuers: readonly x509.X509Certificate[],
  bundle: TrustBundle,
  now: Date,
  leafNode?: NodeX509Certificate,
): ValidatedSvidLeaf {
  const facts = issuers.length + 1 > MAX_CHAIN_LENGTH ? undefined : plainLeafFacts(leafDer, issuers);
  let node: NodeX509Certificate | undefined;
  try {
    node = facts === undefined ? undefined : (leafNode ?? new NodeX509Certificate(leafDer));
  } catch {
    node = undefined;
  }
  if (facts === undefined || node === undefined) {
    const leaf = parseCertificate(leafDer);
    return { ...validateChain([leaf, ...issuers], bundle, now), ...validityOf(leaf) };
  }
  const id = checkLeafFacts(facts, bundle.trustDomain, now);
  const path = validatePath(id, undefined, node, issuers, bundle, now);
  return { ...path, notBefore: facts.notBefore, notAfter: facts.notAfter };
}

/** Path validation from the leaf (`leaf` undefined: known only as `leafNode`) to a root of the bundle. */
function validatePath(
  id: SpiffeId,
  leaf: x509.X509Certificate | undefined,
  leafNode: NodeX509Certificate,
  issuers: readonly x509.X509Certificate[],
  bundle: TrustBundle,
  now: Date,
): ValidatedPath {
  // OpenSSL refuses a chain whose leaf key it cannot decode; the leaf rules never look at the key, so check it here.
  try {
    void leafNode.publicKey;
  } catch (cause) {
    throw new MeshauthError('MESHAUTH_ERR_SVID_MALFORMED', 'leaf public key cannot be decoded', {
      reason: 'malformed',
      cause,
    });
  }
  const candidates = [...issuers, ...bundle.roots];
  let current: x509.X509Certificate | undefined = leaf;
  let currentNode = leafNode;
  let caCount = 0; // CA certificates above the leaf so far, checked against each issuer's pathLen
  let issuersNotAfter: Date | undefined;
  for (let depth = 0; depth < MAX_CHAIN_LENGTH; depth++) {
    if (depth > 0 && current !== undefined && bundle.hasRoot(current) && issuersNotAfter !== undefined) {
      return { id, issuersNotAfter };
    }
    const parent = findIssuer(current, currentNode, candidates);
    if (parent === undefined) {
      fail('MESHAUTH_ERR_SVID_UNKNOWN_CA', 'certificate chain does not lead to a trusted root', 'unknown_ca');
    }
    readable(() => checkCaCertificate(parent, caCount, now));
    const constraints = readable(() => uriConstraints(parent));
    if (constraints !== undefined && !hostAllowed(id.trustDomain.name, constraints)) {
      fail('MESHAUTH_ERR_SVID_CHAIN', 'SPIFFE ID violates the issuer name constraints', 'name_constraints');
    }
    const { notAfter } = validityOf(parent);
    if (issuersNotAfter === undefined || notAfter < issuersNotAfter) issuersNotAfter = notAfter;
    if (parent !== current && bundle.hasRoot(parent)) return { id, issuersNotAfter };
    caCount += 1;
    current = parent;
    currentNode = toNode(parent);
  }
  fail('MESHAUTH_ERR_SVID_UNKNOWN_CA', 'certificate chain does not lead to a trusted root', 'unknown_ca');
}

function findIssuer(
  child: x509.X509Certificate | undefined,
  nodeChild: NodeX509Certificate,
  candidates: readonly x509.X509Certificate[],
): x509.X509Certificate | undefined {
  for (const candidate of candidates) {
    if (candidate === child) continue;
    if (child !== undefined && verifiedPairs.get(child)?.has(candidate) === true) return candidate;
    const nodeCandidate = toNode(candidate);
    if (nodeChild.checkIssued(nodeCandidate) && nodeChild.verify(nodeCandidate.publicKey)) {
      if (child === undefined) return candidate;
      let parents = verifiedPairs.get(child);
      if (parents === undefined) {
        parents = new WeakSet();
        verifiedPairs.set(child, parents);
      }
      parents.add(candidate);
      return candidate;
    }
  }
  return undefined;
}

/**
 * Child → parents whose signature on it verified. Certificates are immutable, so a verified pair stays verified;
 * the intermediate → root step of a chain the CA sees thousands of times (the same cached objects) is checked once.
 * Validity, CA flags and constraints are still checked on every call.
 */
const verifiedPairs = new WeakMap<x509.X509Certificate, WeakSet<x509.X509Certificate>>();

function checkCaCertificate(cert: x509.X509Certificate, casBelow: number, now: Date): void {
  checkIssuerShape(cert);
  const basic = cert.getExtension(x509.BasicConstraintsExtension);
  if (basic?.ca !== true) fail('MESHAUTH_ERR_SVID_CHAIN', 'issuer is not a CA certificate', 'issuer_not_ca');
  if (basic.pathLength !== undefined && casBelow > basic.pathLength) {
    fail('MESHAUTH_ERR_SVID_CHAIN', 'issuer path length constraint exceeded', 'path_length');
  }
  const usage = cert.getExtension(x509.KeyUsagesExtension);
  if (usage !== null && (usage.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
    fail('MESHAUTH_ERR_SVID_CHAIN', 'issuer lacks keyCertSign key usage', 'issuer_key_usage');
  }
  checkValidity(validityOf(cert), now, 'issuer');
}

/**
 * What never changes for an issuer certificate, checked once per (immutable) certificate object. The same extension
 * rules as the leaf's: OpenSSL refuses an unknown critical extension at any depth, and this validator is the only
 * chain check where no handshake verified the chain (CA renewal, passport x5c). A signing
 * certificate may carry a SPIFFE ID, but one without a path; a workload's ID on a CA certificate is refused.
 */
function checkIssuerShape(cert: x509.X509Certificate): void {
  if (issuerShapeChecked.has(cert)) return;
  checkExtensionSet(cert, 'issuer');
  // An issuer that restricts its extended key usage must allow both of an SVID's uses: OpenSSL refuses a client chain
  // through a serverAuth-only CA (and a server chain through a clientAuth-only one) in a handshake.
  const usages = cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages;
  if (
    usages !== undefined &&
    (!usages.includes(x509.ExtendedKeyUsage.serverAuth) || !usages.includes(x509.ExtendedKeyUsage.clientAuth))
  ) {
    fail('MESHAUTH_ERR_SVID_CHAIN', 'issuer extended key usage excludes serverAuth or clientAuth', 'issuer_eku');
  }
  for (const uri of uriSans(cert)) {
    if (SpiffeId.tryParse(uri)?.isTrustDomainId === false) {
      fail('MESHAUTH_ERR_SVID_CHAIN', `issuer certificate carries the workload ID ${uri}`, 'bad_intermediate');
    }
  }
  issuerShapeChecked.add(cert);
}

const issuerShapeChecked = new WeakSet<x509.X509Certificate>();

/**
 * The issuer rules that OpenSSL's chain verification does not know, for a CA certificate of a chain a TLS handshake
 * already verified (cA, pathLen, key usage are OpenSSL's): no workload ID on a signing certificate.
 */
export function checkSvidIssuer(cert: x509.X509Certificate): void {
  readable(() => checkIssuerShape(cert));
}

function checkValidity(
  cert: { readonly notBefore: Date; readonly notAfter: Date },
  now: Date,
  which: 'leaf' | 'issuer',
): void {
  if (now < cert.notBefore) {
    fail(
      'MESHAUTH_ERR_SVID_NOT_YET_VALID',
      `${which} certificate is not valid before ${cert.notBefore.toISOString()}`,
      'not_yet_valid',
    );
  }
  if (now > cert.notAfter) {
    fail('MESHAUTH_ERR_SVID_EXPIRED', `${which} certificate expired at ${cert.notAfter.toISOString()}`, 'expired');
  }
}

const nodeCertificates = new WeakMap<x509.X509Certificate, NodeX509Certificate>();

function toNode(cert: x509.X509Certificate): NodeX509Certificate {
  let node = nodeCertificates.get(cert);
  if (node === undefined) {
    try {
      node = new NodeX509Certificate(Buffer.from(cert.rawData));
    } catch (cause) {
      // @peculiar/x509 is more lenient than OpenSSL (an empty INTEGER serial, some BER): a certificate only one of
      // them can read is malformed, not an internal error.
      throw new MeshauthError('MESHAUTH_ERR_SVID_MALFORMED', 'certificate cannot be parsed', {
        reason: 'malformed',
        cause,
      });
    }
    nodeCertificates.set(cert, node);
  }
  return node;
}

function fail(code: ConstructorParameters<typeof MeshauthError>[0], message: string, reason: string): never {
  throw new MeshauthError(code, message, { reason });
}
