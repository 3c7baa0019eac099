// The CA's JWT-SVID signing key (`POST /v1/token`): one P-256 key in `<dir>/jwt.key` (0600), separate from
// the X.509 keys so a JWKS consumer never holds a key that can also sign certificates. `kid` is the key's
// JWK thumbprint, so every replica sharing the directory publishes the same `kid` without coordination.
import { createECDH, createPrivateKey, hkdfSync } from 'node:crypto';
import { dirname } from 'node:path';
import { calculateJwkThumbprint, exportJWK, type JWK } from 'jose';
import { MeshauthError } from '../errors/index.js';
import { exportPrivateKeyPem, generateKeyPair, importPrivateKeyPem, type KeyPair } from '../pki/index.js';
import type { Logger } from '../telemetry/index.js';
import { readCaFile, readCaFileIfPresent } from './ca-dir-file.js';
import { caPaths, createFileExclusive, PRIVATE_FILE_MODE, writeFileAtomic } from './ca-files.js';
import { CA_PRIVATE_KEY, parsedCaFile } from './parsed-ca-file.js';

/** JWS algorithm of every JWT-SVID the CA signs (JWT-SVIDs allow it; one algorithm per key: a token cannot pick). */
export const JWT_SVID_ALG = 'ES256';

export interface JwtSigningKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  /** The public half as published in `GET /v1/jwks`: `{kty, crv, x, y, kid, alg: ES256, use: sig}`. */
  readonly publicJwk: Readonly<JWK>;
}

/** Writes a new signing key over the existing one: `ca rotate --jwt-key` (`ca init` stages its own, store.ts). */
export async function writeNewJwtSigningKey(dir: string): Promise<void> {
  const keys = await generateKeyPair('p256');
  await writeFileAtomic(caPaths(dir).jwtKey, await exportPrivateKeyPem(keys.privateKey), PRIVATE_FILE_MODE);
}

/**
 * Loads `jwt.key`, creating it first when the CA directory predates JWT-SVIDs. Creation is exclusive (link(2)), so
 * replicas starting together agree on one key instead of each keeping the one it generated. Without `create` (a
 * Secret's read-only copy) or in a read-only directory, a missing `jwt.key` is derived from the intermediate key
 * (deriveJwtSigningKey), so replicas sharing the Secret still publish one key.
 */
export async function loadOrCreateJwtSigningKey(dir: string, logger?: Logger, create = true): Promise<JwtSigningKey> {
  const file = caPaths(dir).jwtKey;
  let pem = await readJwtKeyFile(file);
  if (pem === undefined) {
    if (!create) return derivedOrEphemeral(dir, file, logger);
    const keys = await generateKeyPair('p256');
    try {
      await createFileExclusive(file, await exportPrivateKeyPem(keys.privateKey), PRIVATE_FILE_MODE);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EROFS' && code !== 'EACCES' && code !== 'EPERM') throw error;
      return derivedOrEphemeral(dir, file, logger);
    }
    pem = readCaFile(caPaths(dir), file);
  }
  return parseJwtSigningKey(pem, file);
}

/** `jwt.key`'s text, or undefined when the file does not exist. */
export async function readJwtKeyFile(file: string): Promise<string | undefined> {
  // Bounded and regular files only (ca-dir-file.ts): a FIFO at the path blocked the start, and a reload.
  return readCaFileIfPresent(file);
}

/** `file` (jwt.key of a CA directory) holding `pem`; text that is no key is refused naming the directory and file. */
export async function parseJwtSigningKey(pem: string, file: string): Promise<JwtSigningKey> {
  const keys = await parsedCaFile(dirname(file), file, JWT_PRIVATE_KEY, () => importPrivateKeyPem(pem));
  return jwtSigningKeyOf(keys, file);
}

const JWT_PRIVATE_KEY = 'one PEM P-256 private key (JWT-SVIDs are signed with ES256)';

/** The published form of a public key: `{kty, crv, x, y, kid, alg, use}` with the JWK thumbprint as kid. */
export async function publicJwkOf(publicKey: CryptoKey): Promise<Readonly<JWK>> {
  const { kty, crv, x, y } = await exportJWK(publicKey);
  const bare = { kty, crv, x, y } as JWK;
  const kid = await calculateJwkThumbprint(bare, 'sha256');
  return Object.freeze({ ...bare, kid, alg: JWT_SVID_ALG, use: 'sig' });
}

/**
 * A P-256 key derived from the intermediate key with HKDF-SHA256: every replica holding the same
 * intermediate derives the same JWT signing key, and it never signs certificates. It changes with the intermediate
 * (JwtKeyRing keeps the previous one published meanwhile). Undefined when there is no intermediate key to read.
 */
export async function deriveJwtSigningKey(dir: string): Promise<JwtSigningKey | undefined> {
  const keyFile = caPaths(dir).intermediateKey;
  let keyPem: string | undefined;
  try {
    keyPem = readCaFileIfPresent(keyFile);
  } catch {
    keyPem = undefined; // not readable as a file: no key to derive from, as when it is missing
  }
  if (keyPem === undefined) return undefined;
  const intermediateKeyPem = keyPem; // a const: the closure below keeps its narrowing
  const ikm = parsedCaFile(dir, keyFile, CA_PRIVATE_KEY, () =>
    createPrivateKey(intermediateKeyPem).export({ type: 'pkcs8', format: 'der' }),
  );
  // A 32-byte string is a valid P-256 scalar unless it is 0 or ≥ n (probability about 2^-32): try the next one.
  for (let counter = 0; counter < 8; counter++) {
    const d = Buffer.from(hkdfSync('sha256', ikm, 'meshauth', `jwt-svid signing key ${counter}`, 32));
    let point: Buffer;
    try {
      const ecdh = createECDH('prime256v1');
      ecdh.setPrivateKey(d);
      point = ecdh.getPublicKey();
    } catch {
      continue;
    }
    const jwk = {
      kty: 'EC',
      crv: 'P-256',
      d: d.toString('base64url'),
      x: point.subarray(1, 33).toString('base64url'),
      y: point.subarray(33, 65).toString('base64url'),
    };
    const pem = createPrivateKey({ key: jwk, format: 'jwk' }).export({ type: 'pkcs8', format: 'pem' }) as string;
    return parseJwtSigningKey(pem, `${keyFile} (derived)`);
  }
  return undefined;
}

async function derivedOrEphemeral(dir: string, file: string, logger: Logger | undefined): Promise<JwtSigningKey> {
  const derived = await deriveJwtSigningKey(dir);
  if (derived !== undefined) {
    logger?.info(
      { event: 'jwt_key_derived', file, kid: derived.kid },
      'no jwt.key in the CA directory: the JWT-SVID signing key is derived from the intermediate key',
    );
    return derived;
  }
  logger?.warn(
    { event: 'jwt_key_ephemeral', file },
    'no jwt.key and no intermediate key: JWT-SVIDs are signed with a key held in memory only',
  );
  return jwtSigningKeyOf(await generateKeyPair('p256'), file);
}

async function jwtSigningKeyOf(keys: KeyPair, file: string): Promise<JwtSigningKey> {
  if (keys.type !== 'p256') {
    throw new MeshauthError('MESHAUTH_ERR_KEY_TYPE', `${file} must hold a P-256 key (JWT-SVIDs are signed with ES256)`);
  }
  const publicJwk = await publicJwkOf(keys.publicKey);
  return { kid: publicJwk.kid as string, privateKey: keys.privateKey, publicJwk };
}
