// X509-SVID validation (SPIFFE X509-SVID §4 and §5). Pure: no I/O, time comes in as `now`.
// checkSvidLeaf() enforces the leaf rules only; it is what the TLS listeners run after OpenSSL has verified the
// chain in the handshake. validateX509Svid() adds RFC 5280 path validation against a bundle, for chains that did
// not come through a TLS handshake (passport x5c headers, CA renewal checks, `cert inspect`).
import { X509Certificate as NodeX509Certificate } from 'node:crypto';
import { MeshauthError } from '../errors/index.js';
import { SpiffeId, type TrustDomain } from '../identity/index.js';
import { uriSans } from './certificates.js';
import { hostPermitted, permittedUriHosts } from './name-constraints.js';
import type { TrustBundle } from './trust-bundle.js';
import { x509 } from './x509.js';

const MAX_CHAIN_LENGTH = 5;

/** Checks the leaf rules of X509-SVID §4 and §5.2 and returns the leaf's SPIFFE ID. */
export function checkSvidLeaf(leaf: x509.X509Certificate, trustDomain: TrustDomain, now: Date): SpiffeId {
  const uris = uriSans(leaf);
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
  const basic = leaf.getExtension(x509.BasicConstraintsExtension);
  if (basic?.ca === true)
    fail('MESHAUTH_ERR_SVID_LEAF_IS_CA', 'leaf certificate with CA flag set to true', 'leaf_is_ca');
  const usage = leaf.getExtension(x509.KeyUsagesExtension);
  if (usage === null || !usage.critical) {
    fail('MESHAUTH_ERR_SVID_KEY_USAGE', 'leaf certificate has no critical key usage extension', 'bad_key_usage');
  }
  if ((usage.usages & x509.KeyUsageFlags.digitalSignature) === 0) {
    fail('MESHAUTH_ERR_SVID_KEY_USAGE', 'leaf certificate lacks digitalSignature key usage', 'bad_key_usage');
  }
  if ((usage.usages & (x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign)) !== 0) {
    fail('MESHAUTH_ERR_SVID_KEY_USAGE', 'leaf certificate has keyCertSign or cRLSign key usage', 'bad_key_usage');
  }
  const eku = leaf.getExtension(x509.ExtendedKeyUsageExtension);
  if (eku !== null) {
    const usages = eku.usages.map(String);
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
  const leaf = chain[0];
  if (leaf === undefined) fail('MESHAUTH_ERR_SVID_CHAIN', 'empty certificate chain', 'empty_chain');
  if (chain.length > MAX_CHAIN_LENGTH) fail('MESHAUTH_ERR_SVID_CHAIN', 'certificate chain too long', 'chain_too_long');
  const id = checkSvidLeaf(leaf, bundle.trustDomain, now);
  const candidates = [...chain.slice(1), ...bundle.roots];
  let current = leaf;
  let caCount = 0; // CA certificates above the leaf so far, checked against each issuer's pathLen
  for (let depth = 0; depth < MAX_CHAIN_LENGTH; depth++) {
    if (depth > 0 && bundle.hasRoot(current)) return id;
    const parent = findIssuer(current, candidates);
    if (parent === undefined) {
      fail('MESHAUTH_ERR_SVID_UNKNOWN_CA', 'certificate chain does not lead to a trusted root', 'unknown_ca');
    }
    checkCaCertificate(parent, caCount, now);
    const permitted = permittedUriHosts(parent);
    if (permitted !== undefined && !hostPermitted(id.trustDomain.name, permitted)) {
      fail('MESHAUTH_ERR_SVID_CHAIN', 'SPIFFE ID violates the issuer name constraints', 'name_constraints');
    }
    if (parent !== current && bundle.hasRoot(parent)) return id;
    caCount += 1;
    current = parent;
  }
  fail('MESHAUTH_ERR_SVID_UNKNOWN_CA', 'certificate chain does not lead to a trusted root', 'unknown_ca');
}

function findIssuer(
  child: x509.X509Certificate,
  candidates: readonly x509.X509Certificate[],
): x509.X509Certificate | undefined {
  const nodeChild = toNode(child);
  for (const candidate of candidates) {
    if (candidate === child) continue;
    const nodeCandidate = toNode(candidate);
    if (nodeChild.checkIssued(nodeCandidate) && nodeChild.verify(nodeCandidate.publicKey)) return candidate;
  }
  return undefined;
}

function checkCaCertificate(cert: x509.X509Certificate, casBelow: number, now: Date): void {
  const basic = cert.getExtension(x509.BasicConstraintsExtension);
  if (basic?.ca !== true) fail('MESHAUTH_ERR_SVID_CHAIN', 'issuer is not a CA certificate', 'issuer_not_ca');
  if (basic.pathLength !== undefined && casBelow > basic.pathLength) {
    fail('MESHAUTH_ERR_SVID_CHAIN', 'issuer path length constraint exceeded', 'path_length');
  }
  const usage = cert.getExtension(x509.KeyUsagesExtension);
  if (usage !== null && (usage.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
    fail('MESHAUTH_ERR_SVID_CHAIN', 'issuer lacks keyCertSign key usage', 'issuer_key_usage');
  }
  checkValidity(cert, now, 'issuer');
}

function checkValidity(cert: x509.X509Certificate, now: Date, which: 'leaf' | 'issuer'): void {
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
    node = new NodeX509Certificate(Buffer.from(cert.rawData));
    nodeCertificates.set(cert, node);
  }
  return node;
}

function fail(code: ConstructorParameters<typeof MeshauthError>[0], message: string, reason: string): never {
  throw new MeshauthError(code, message, { reason });
}
