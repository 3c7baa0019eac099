// The facts the X509-SVID leaf rules look at (svid-validator.ts), read straight from the DER of a leaf of the plain
// shape meshauth issues, for the CA's renewal path: parsing a leaf through @peculiar/x509 costs about a millisecond
// and most of the garbage a renewal makes. "Plain" is narrow on purpose: strict DER throughout, X.509 v3, an empty
// subject, an issuer name byte-identical to the subject of one of the given issuers, times in their DER forms, and
// only the six extensions meshauth writes (basicConstraints, keyUsage, extKeyUsage, subjectAltName with DNS, URI,
// IP or e-mail names in ASCII, subjectKeyIdentifier, authorityKeyIdentifier), each once. For anything else this
// returns undefined and the caller parses the certificate as before, so every other leaf meets the same code as
// always. Pure.
import { type DerElement, derBytes, derChildren, derContent, derOid, derWellFormed, readDer } from './der.js';
import type { LeafFacts } from './svid-validator.js';
import type { x509 } from './x509.js';

const BASIC_CONSTRAINTS = '2.5.29.19';
const KEY_USAGE = '2.5.29.15';
const EXT_KEY_USAGE = '2.5.29.37';
const SUBJECT_ALT_NAME = '2.5.29.17';
const SUBJECT_KEY_ID = '2.5.29.14';
const AUTHORITY_KEY_ID = '2.5.29.35';
const KNOWN = new Set([
  BASIC_CONSTRAINTS,
  KEY_USAGE,
  EXT_KEY_USAGE,
  SUBJECT_ALT_NAME,
  SUBJECT_KEY_ID,
  AUTHORITY_KEY_ID,
]);
const EMPTY_NAME = Buffer.from([0x30, 0x00]);

/** issuer certificate → its subject Name DER, computed once per (immutable) certificate object. */
const subjectDer = new WeakMap<x509.X509Certificate, Buffer>();

export function plainLeafFacts(leaf: Uint8Array, issuers: readonly x509.X509Certificate[]): LeafFacts | undefined {
  const der = Buffer.from(leaf.buffer, leaf.byteOffset, leaf.byteLength);
  const outer = readDer(der, 0);
  if (outer?.tag !== 0x30 || outer.end !== der.length || !derWellFormed(der, outer)) return undefined;
  const [tbs, outerAlgorithm, signatureValue, extraTop] = derChildren(der, outer) ?? [];
  if (tbs?.tag !== 0x30 || outerAlgorithm?.tag !== 0x30 || extraTop !== undefined) return undefined;
  if (signatureValue?.tag !== 0x03 || !isOctetAligned(der, signatureValue)) return undefined;
  const fields = derChildren(der, tbs) ?? [];
  if (fields.length !== 8) return undefined;
  // The signature field inside equals signatureAlgorithm outside, byte for byte.
  if (!derBytes(der, fields[2] as DerElement).equals(derBytes(der, outerAlgorithm))) return undefined;
  const [version, serial, , issuer, validity, subject, spki, extensions] = fields as DerElement[] as [
    DerElement,
    DerElement,
    DerElement,
    DerElement,
    DerElement,
    DerElement,
    DerElement,
    DerElement,
  ];
  if (version.tag !== 0xa0 || !derBytes(der, version).equals(VERSION_V3)) return undefined;
  if (!isSerialNumber(derContent(der, serial)) || serial.tag !== 0x02) return undefined;
  if (spki.tag !== 0x30 || extensions.tag !== 0xa3) return undefined;
  // SubjectPublicKeyInfo ::= SEQUENCE { AlgorithmIdentifier, BIT STRING } (the key itself is OpenSSL's to check).
  const [keyAlgorithm, keyBits, extraKey] = derChildren(der, spki) ?? [];
  if (keyAlgorithm?.tag !== 0x30 || keyBits?.tag !== 0x03 || !isOctetAligned(der, keyBits) || extraKey) {
    return undefined;
  }
  if (!derBytes(der, subject).equals(EMPTY_NAME)) return undefined;
  const issuerName = derBytes(der, issuer);
  if (!issuers.some((candidate) => subjectOf(candidate).equals(issuerName))) return undefined;
  const [notBeforeElement, notAfterElement, extraTime] = derChildren(der, validity) ?? [];
  if (validity.tag !== 0x30 || notBeforeElement === undefined || notAfterElement === undefined || extraTime) {
    return undefined;
  }
  const notBefore = derTime(der, notBeforeElement);
  const notAfter = derTime(der, notAfterElement);
  if (notBefore === undefined || notAfter === undefined) return undefined;
  const [list, extraList] = derChildren(der, extensions) ?? [];
  if (list?.tag !== 0x30 || extraList !== undefined) return undefined;

  let uris: string[] | undefined;
  let ca: boolean | undefined;
  let keyUsage: LeafFacts['keyUsage'] = null;
  let extKeyUsage: string[] | null = null;
  let sanCritical = false;
  const seen = new Set<string>();
  for (const extension of derChildren(der, list) ?? []) {
    const parts = extension.tag === 0x30 ? derChildren(der, extension) : undefined;
    if (parts === undefined || parts.length < 2 || parts.length > 3) return undefined;
    const oid = derOid(der, parts[0] as DerElement);
    if (oid === undefined || !KNOWN.has(oid) || seen.has(oid)) return undefined;
    seen.add(oid);
    let critical = false;
    if (parts.length === 3) {
      const flag = parts[1] as DerElement;
      const content = derContent(der, flag);
      if (flag.tag !== 0x01 || content.length !== 1) return undefined;
      critical = content[0] !== 0;
    }
    // OpenSSL refuses either key identifier marked critical; the general path says so (unknown_critical_extension).
    if (critical && (oid === SUBJECT_KEY_ID || oid === AUTHORITY_KEY_ID)) return undefined;
    const wrapper = parts[parts.length - 1] as DerElement;
    if (wrapper.tag !== 0x04) return undefined;
    const value = readDer(der, wrapper.contentStart, wrapper.end);
    if (value === undefined || value.end !== wrapper.end || !derWellFormed(der, value)) return undefined;
    switch (oid) {
      case BASIC_CONSTRAINTS: {
        const read = basicConstraintsCa(der, value);
        if (read === undefined) return undefined;
        ca = read;
        break;
      }
      case KEY_USAGE: {
        const usages = bitFlags(der, value);
        if (usages === undefined) return undefined;
        keyUsage = { critical, usages };
        break;
      }
      case EXT_KEY_USAGE: {
        const oids = value.tag === 0x30 ? (derChildren(der, value) ?? []).map((e) => derOid(der, e)) : [undefined];
        if (oids.length === 0 || oids.some((o) => o === undefined)) return undefined;
        extKeyUsage = oids as string[];
        break;
      }
      case SUBJECT_ALT_NAME: {
        sanCritical = critical;
        uris = uriNames(der, value);
        if (uris === undefined) return undefined;
        break;
      }
      case SUBJECT_KEY_ID:
        if (value.tag !== 0x04) return undefined;
        break;
      default:
        // authorityKeyIdentifier with a keyIdentifier alone, as meshauth writes it.
        if (value.tag !== 0x30 || (derChildren(der, value) ?? []).some((e) => e.tag !== 0x80)) return undefined;
    }
  }
  // With the subject empty, the SAN must be critical; meshauth also always names its key
  // (authorityKeyIdentifier). Leaves without either are read by the general path.
  if (!sanCritical || !seen.has(AUTHORITY_KEY_ID)) return undefined;
  return { uris: uris ?? [], ca, keyUsage, extKeyUsage, notBefore, notAfter };
}

const VERSION_V3 = Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]);
const UTC_TIME = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/;
const GENERALIZED_TIME = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/;

/** A v3 certificate's SubjectPublicKeyInfo as DER, or undefined when the certificate does not split that way. */
export function certificateSpkiDer(certificate: Uint8Array): Buffer | undefined {
  const { der, fields } = v3Fields(certificate);
  const spki = fields?.[6];
  return spki?.tag === 0x30 ? derBytes(der, spki) : undefined;
}

/**
 * A v3 certificate's serial number in hex as @peculiar/x509 prints it (the INTEGER's bytes, without the 00 that
 * keeps a high first byte positive); empty when the certificate does not split that way.
 */
export function certificateSerialHex(certificate: Uint8Array): string {
  const { der, fields } = v3Fields(certificate);
  const serial = fields?.[1];
  if (serial?.tag !== 0x02) return '';
  const bytes = derContent(der, serial);
  return (bytes.length > 1 && bytes[0] === 0 && (bytes[1] as number) > 0x7f ? bytes.subarray(1) : bytes).toString(
    'hex',
  );
}

/** The TBSCertificate fields of a certificate that starts with a [0] version; fields undefined otherwise. */
function v3Fields(certificate: Uint8Array): { der: Buffer; fields: DerElement[] | undefined } {
  const der = Buffer.from(certificate.buffer, certificate.byteOffset, certificate.byteLength);
  const outer = readDer(der, 0);
  const tbs = outer?.tag === 0x30 ? derChildren(der, outer)?.[0] : undefined;
  const fields = tbs?.tag === 0x30 ? derChildren(der, tbs) : undefined;
  return { der, fields: fields?.[0]?.tag === 0xa0 ? fields : undefined };
}

/**
 * A certificate's validity, read from its DER: both times, `'time_not_der'` when either is not in its DER form
 * (UTCTime YYMMDDHHMMSSZ, GeneralizedTime YYYYMMDDHHMMSSZ), undefined when the certificate does not split as DER (a
 * BER length somewhere). @peculiar/x509 reads other time forms wrongly (a UTCTime without seconds or with an offset
 * as 1899, a GeneralizedTime with an offset days off), where OpenSSL refuses them.
 */
export function certificateValidityDer(
  certificate: Uint8Array,
): { notBefore: Date; notAfter: Date } | 'time_not_der' | undefined {
  const der = Buffer.from(certificate.buffer, certificate.byteOffset, certificate.byteLength);
  const outer = readDer(der, 0);
  const tbs = outer?.tag === 0x30 ? derChildren(der, outer)?.[0] : undefined;
  const fields = tbs?.tag === 0x30 ? derChildren(der, tbs) : undefined;
  const validity = fields?.[fields[0]?.tag === 0xa0 ? 4 : 3];
  const [first, second, extra] = validity?.tag === 0x30 ? (derChildren(der, validity) ?? []) : [];
  if (first === undefined || second === undefined || extra !== undefined) return undefined;
  const notBefore = derTime(der, first);
  const notAfter = derTime(der, second);
  return notBefore === undefined || notAfter === undefined ? 'time_not_der' : { notBefore, notAfter };
}

/** A BIT STRING of whole octets: its unused-bits count is 0 (a signature, a public key). */
function isOctetAligned(der: Buffer, bits: DerElement): boolean {
  return bits.end - bits.contentStart >= 2 && der[bits.contentStart] === 0;
}

/** A serial number: a positive INTEGER of at most 20 octets, minimally encoded. */
function isSerialNumber(content: Buffer): boolean {
  if (content.length === 0 || content.length > 20 || ((content[0] as number) & 0x80) !== 0) return false;
  return content.length === 1 || content[0] !== 0 || ((content[1] as number) & 0x80) !== 0;
}

function subjectOf(cert: x509.X509Certificate): Buffer {
  let name = subjectDer.get(cert);
  if (name === undefined) {
    name = Buffer.from(cert.subjectName.toArrayBuffer());
    subjectDer.set(cert, name);
  }
  return name;
}

/** BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL }. */
function basicConstraintsCa(der: Buffer, value: DerElement): boolean | undefined {
  if (value.tag !== 0x30) return undefined;
  const [first, second, extra] = derChildren(der, value) ?? [];
  if (extra !== undefined) return undefined;
  if (first === undefined) return false;
  // A pathLenConstraint without cA (meaningless, so forbidden; OpenSSL's strict mode refuses it) is not the plain
  // shape: the general path reads it.
  if (first.tag === 0x02) return undefined;
  const content = derContent(der, first);
  if (first.tag !== 0x01 || content.length !== 1 || (second !== undefined && second.tag !== 0x02)) return undefined;
  return content[0] !== 0;
}

/** A named-bit BIT STRING as flags, bit i (X.680 numbering) → 2^i, as @peculiar/asn1-schema's toNumber() reads it. */
function bitFlags(der: Buffer, value: DerElement): number | undefined {
  const content = derContent(der, value);
  // A key usage has at least one bit set, so at least one content octet after the unused-bits count.
  if (value.tag !== 0x03 || content.length < 2 || content.length > 3 || (content[0] as number) > 7) return undefined;
  const bits = (content.length - 1) * 8 - (content[0] as number);
  let flags = 0;
  for (let i = 0; i < bits; i++) {
    if (((content[1 + (i >> 3)] as number) & (0x80 >> (i & 7))) !== 0) flags += 2 ** i;
  }
  return flags;
}

/** The URI names of a GeneralNames of rfc822Name, dNSName, URI and IP entries only (ASCII); undefined otherwise. */
function uriNames(der: Buffer, value: DerElement): string[] | undefined {
  if (value.tag !== 0x30) return undefined;
  const uris: string[] = [];
  for (const name of derChildren(der, value) ?? []) {
    const content = derContent(der, name);
    if (name.tag === 0x87) {
      if (content.length !== 4 && content.length !== 16) return undefined;
      continue;
    }
    if (name.tag !== 0x81 && name.tag !== 0x82 && name.tag !== 0x86) return undefined;
    for (const byte of content) if (byte < 0x20 || byte > 0x7e) return undefined;
    if (name.tag === 0x86) uris.push(content.toString('latin1'));
  }
  return uris;
}

/** UTCTime YYMMDDHHMMSSZ or GeneralizedTime YYYYMMDDHHMMSSZ (the only DER forms allowed). */
function derTime(der: Buffer, element: DerElement): Date | undefined {
  const text = derContent(der, element).toString('latin1');
  const utc = element.tag === 0x17 ? UTC_TIME.exec(text) : null;
  const generalized = element.tag === 0x18 ? GENERALIZED_TIME.exec(text) : null;
  const match = utc ?? generalized;
  if (match === null) return undefined;
  const yy = Number(match[1]);
  const year = utc !== null ? (yy >= 50 ? 1900 + yy : 2000 + yy) : yy;
  const [month, day, hour, minute, second] = match.slice(2).map(Number) as [number, number, number, number, number];
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  // A calendar overflow (month 13, 31 February) is not a DER time.
  if (date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) {
    return undefined;
  }
  if (year < 100) return undefined;
  return date;
}
