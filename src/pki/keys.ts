// Key pairs for SVIDs and CAs: ECDSA P-256 by default, Ed25519 and RSA-2048 on request.
// Keys are WebCrypto CryptoKeys (what @peculiar/x509 and jose take) plus PKCS#8 PEM (what node:tls takes).
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { MeshauthError } from '../errors/index.js';
import type { KeyType } from './issuance-options.js';
import { subtle } from './x509.js';

export { KEY_TYPES, type KeyType, parseKeyType } from './issuance-options.js';

export interface KeyPair {
  readonly type: KeyType;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
}

/** WebCrypto parameters for generating, importing and signing with each key type. */
export const KEY_ALGORITHMS: Readonly<
  Record<
    KeyType,
    { generate: EcKeyGenParams | RsaHashedKeyGenParams | Algorithm; sign: Algorithm | EcdsaParams; jwsAlg: string }
  >
> = {
  p256: {
    generate: { name: 'ECDSA', namedCurve: 'P-256' },
    sign: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
    jwsAlg: 'ES256',
  },
  ed25519: { generate: { name: 'Ed25519' }, sign: { name: 'Ed25519' }, jwsAlg: 'EdDSA' },
  rsa2048: {
    generate: {
      name: 'RSASSA-PKCS1-v1_5',
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: 'SHA-256',
    } as RsaHashedKeyGenParams,
    sign: { name: 'RSASSA-PKCS1-v1_5' },
    jwsAlg: 'RS256',
  },
};

export async function generateKeyPair(type: KeyType = 'p256'): Promise<KeyPair> {
  const pair = (await subtle.generateKey(KEY_ALGORITHMS[type].generate, true, ['sign', 'verify'])) as CryptoKeyPair;
  return { type, privateKey: pair.privateKey, publicKey: pair.publicKey };
}

export async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  const der = await subtle.exportKey('pkcs8', key);
  return toPem('PRIVATE KEY', new Uint8Array(der));
}

/** Imports a PKCS#8 (or SEC1/PKCS#1) PEM private key, detecting its type. The public key is derived from it. */
export async function importPrivateKeyPem(pem: string): Promise<KeyPair> {
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey(pem);
  } catch (cause) {
    throw new MeshauthError('MESHAUTH_ERR_KEY_TYPE', 'private key cannot be parsed', { cause });
  }
  const type = keyTypeOf(keyObject);
  const algorithm = KEY_ALGORITHMS[type].generate;
  const pkcs8 = keyObject.export({ type: 'pkcs8', format: 'der' });
  const spki = createPublicKey(keyObject).export({ type: 'spki', format: 'der' });
  const privateKey = await subtle.importKey('pkcs8', pkcs8, algorithm, true, ['sign']);
  const publicKey = await subtle.importKey('spki', spki, algorithm, true, ['verify']);
  return { type, privateKey, publicKey };
}

export function keyTypeOf(key: KeyObject): KeyType {
  const kind = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails;
  if (kind === 'ec' && details?.namedCurve === 'prime256v1') return 'p256';
  if (kind === 'ed25519') return 'ed25519';
  if (kind === 'rsa' && details?.modulusLength === 2048) return 'rsa2048';
  const shape = `${kind ?? 'unknown'} ${details?.namedCurve ?? details?.modulusLength ?? ''}`.trim();
  throw new MeshauthError('MESHAUTH_ERR_KEY_TYPE', `unsupported key (${shape}): expected P-256, Ed25519 or RSA-2048`);
}

export function toPem(label: string, der: Uint8Array): string {
  const base64 = Buffer.from(der).toString('base64');
  const lines = base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
