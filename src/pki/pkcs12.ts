// PKCS#12 export of an SVID for JVM services (`ca issue --p12`). Modern algorithms only, so stock
// OpenSSL 3 reads it without -legacy and Java 17 keytool accepts it: the key in a PKCS#8 shrouded key bag
// (PBES2: PBKDF2/HMAC-SHA256 + AES-256-CBC), the chain in cert bags, a SHA-256 MAC over the whole.
// Built with pkijs: node-forge cannot parse ECDSA certificates.
import { createHash, createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { Attribute as AsnAttribute } from '@peculiar/asn1-x509';
import * as pkijs from 'pkijs';
import type { x509 } from './x509.js';

const OID_FRIENDLY_NAME = '1.2.840.113549.1.9.20';
const OID_LOCAL_KEY_ID = '1.2.840.113549.1.9.21';
const OID_SHROUDED_KEY_BAG = '1.2.840.113549.1.12.10.1.2';
const OID_CERT_BAG = '1.2.840.113549.1.12.10.1.3';
const KEY_PBKDF2_ITERATIONS = 100_000;
/** The MAC key uses the PKCS#12 KDF, computed in JavaScript by pkijs: OpenSSL's default count keeps it fast. */
const MAC_ITERATIONS = 2048;

export interface Pkcs12Options {
  /** Leaf first, then intermediates. */
  readonly certificates: readonly x509.X509Certificate[];
  /** PKCS#8 (or any Node-readable) PEM private key of the leaf. */
  readonly privateKeyPem: string;
  readonly password: string;
  /** Alias shown by keytool; defaults to `meshauth`. */
  readonly friendlyName?: string;
}

export async function createPkcs12(options: Pkcs12Options): Promise<Uint8Array> {
  const engine = new pkijs.CryptoEngine({ name: 'node', crypto: webcrypto as unknown as Crypto });
  const password = toArrayBuffer(Buffer.from(options.password, 'utf8'));
  const leaf = options.certificates[0];
  if (leaf === undefined) throw new TypeError('a PKCS#12 file needs at least the leaf certificate');
  const localKeyId = createHash('sha1').update(Buffer.from(leaf.rawData)).digest();
  const pairing = [
    attribute(OID_FRIENDLY_NAME, bmpString(options.friendlyName ?? 'meshauth')),
    attribute(OID_LOCAL_KEY_ID, AsnConvert.serialize(new OctetString(localKeyId))),
  ];
  const pkcs8 = createPrivateKey(options.privateKeyPem).export({ type: 'pkcs8', format: 'der' });
  const keyBag = new pkijs.PKCS8ShroudedKeyBag({ parsedValue: pkijs.PrivateKeyInfo.fromBER(toArrayBuffer(pkcs8)) });
  await keyBag.makeInternalValues(
    {
      password,
      // pkijs draws its own random IV; the field is required by the type only.
      contentEncryptionAlgorithm: { name: 'AES-CBC', length: 256, iv: randomBytes(16) },
      hmacHashAlgorithm: 'SHA-256',
      iterationCount: KEY_PBKDF2_ITERATIONS,
    },
    engine,
  );
  const safeBags = [
    new pkijs.SafeBag({ bagId: OID_SHROUDED_KEY_BAG, bagValue: keyBag, bagAttributes: pairing }),
    ...options.certificates.map(
      (cert, index) =>
        new pkijs.SafeBag({
          bagId: OID_CERT_BAG,
          bagValue: new pkijs.CertBag({ parsedValue: pkijs.Certificate.fromBER(cert.rawData) }),
          ...(index === 0 ? { bagAttributes: pairing } : {}),
        }),
    ),
  ];
  const authenticatedSafe = new pkijs.AuthenticatedSafe({
    parsedValue: { safeContents: [{ privacyMode: 0, value: new pkijs.SafeContents({ safeBags }) }] },
  });
  await authenticatedSafe.makeInternalValues({ safeContents: [{}] }, engine);
  const pfx = new pkijs.PFX({ parsedValue: { integrityMode: 0, authenticatedSafe } });
  await pfx.makeInternalValues(
    { password, iterations: MAC_ITERATIONS, pbkdf2HashAlgorithm: { name: 'SHA-256' }, hmacHashAlgorithm: 'SHA-256' },
    engine,
  );
  return new Uint8Array(pfx.toSchema().toBER(false));
}

function attribute(type: string, value: ArrayBuffer): pkijs.Attribute {
  return pkijs.Attribute.fromBER(AsnConvert.serialize(new AsnAttribute({ type, values: [value] })));
}

/** DER BMPString (UTF-16BE), as PKCS#9 friendlyName requires. */
function bmpString(text: string): ArrayBuffer {
  const utf16 = Buffer.from(text, 'utf16le').swap16();
  if (utf16.length > 127) throw new RangeError('friendly name too long');
  return toArrayBuffer(Buffer.concat([Buffer.from([0x1e, utf16.length]), utf16]));
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}
