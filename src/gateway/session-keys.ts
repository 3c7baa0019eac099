// The session key ring: keys from files, the first encrypts, all decrypt (rotation: put the new file first, keep
// the old one listed until the longest session has ended, then drop it). A file holds a secret of at least 32
// bytes (e.g. `openssl rand -base64 32`); the AES-256 key is derived from it with HKDF-SHA256 so any encoding
// works, and its 4-byte id (from a hash of the derived key) tells the decrypter which key sealed a cookie.
import { createHash, createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import { readSettingFile } from '../config/index.js';
import { MeshauthError } from '../errors/index.js';

export interface SessionKey {
  readonly id: Buffer;
  /**
   * The AES-256 key, made a KeyObject once: on Node 24 a cipher given the key as bytes first checks them against
   * KeyObject and CryptoKey, each check a thrown and caught exception, which doubles the cost of sealing or opening a
   * cookie (24 against 13 µs measured).
   */
  readonly key: KeyObject;
}

export interface SessionKeyRing {
  /** Encrypts new cookies. */
  readonly current: SessionKey;
  /** Every key, current first, by hex id. */
  readonly byId: ReadonlyMap<string, SessionKey>;
}

const MIN_SECRET_BYTES = 32;

export function sessionKeyFromSecret(secret: Buffer): SessionKey {
  const key = Buffer.from(hkdfSync('sha256', secret, 'meshauth-session', 'aes-256-gcm cookie key', 32));
  return { id: createHash('sha256').update(key).digest().subarray(0, 4), key: createSecretKey(key) };
}

export function keyRingFromSecrets(secrets: readonly Buffer[], source = 'session.keys'): SessionKeyRing {
  const keys = secrets.map((secret, i) => {
    if (secret.length < MIN_SECRET_BYTES) {
      throw new MeshauthError(
        'MESHAUTH_ERR_CONFIG_INVALID',
        `${source}[${i}]: a session key needs at least ${MIN_SECRET_BYTES} bytes of secret (openssl rand -base64 32)`,
        { reason: 'session_key', detail: { key: `session.keys[${i}]` } },
      );
    }
    return sessionKeyFromSecret(secret);
  });
  const current = keys[0];
  if (current === undefined) {
    throw new MeshauthError('MESHAUTH_ERR_CONFIG_INVALID', `${source}: at least one key is needed`, {
      reason: 'session_key',
    });
  }
  return { current, byId: new Map(keys.map((k) => [k.id.toString('hex'), k])) };
}

/** Reads the key files (trimmed: a trailing newline is not part of the secret). */
export function loadKeyRing(files: readonly string[], source: string): SessionKeyRing {
  const secrets = files.map((file, index) => {
    const setting = `${source}: session.keys[${index}]`;
    return Buffer.from(
      readSettingFile(file, { setting, what: 'session key file', reason: 'session_key' }).trim(),
      'utf8',
    );
  });
  return keyRingFromSecrets(secrets, `${source}: session.keys`);
}
