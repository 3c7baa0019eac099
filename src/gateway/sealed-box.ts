// Authenticated encryption of small JSON values for cookies (AES-256-GCM, node:crypto). Layout, base64url:
//   version (1) | key id (4) | IV (12) | ciphertext | tag (16)
// The cookie name is the additional authenticated data, so a value sealed for one cookie never opens as another
// (a login-state cookie cannot be replayed as a session). Pure apart from the random IV.
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { pooledRandomBytes } from '../platform/index.js';
import type { SessionKeyRing } from './session-keys.js';

const VERSION = 1;
const HEADER = 1 + 4 + 12;
const TAG = 16;

export function seal(ring: SessionKeyRing, purpose: string, value: unknown): string {
  const { id, key } = ring.current;
  const iv = pooledRandomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(purpose, 'utf8'));
  const body = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
  return Buffer.concat([Buffer.of(VERSION), id, iv, body, cipher.getAuthTag()]).toString('base64url');
}

export type OpenFailure = 'malformed' | 'unknown_key' | 'tampered';

/** The JSON value, or why it could not be opened (never throws). */
export function open(
  ring: SessionKeyRing,
  purpose: string,
  text: string,
): { readonly value: unknown } | { readonly failure: OpenFailure } {
  if (!/^[A-Za-z0-9_-]+$/.test(text)) return { failure: 'malformed' };
  const raw = Buffer.from(text, 'base64url');
  if (raw.length < HEADER + TAG + 2 || raw[0] !== VERSION) return { failure: 'malformed' };
  const key = ring.byId.get(raw.subarray(1, 5).toString('hex'));
  if (key === undefined) return { failure: 'unknown_key' };
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.key, raw.subarray(5, HEADER));
    decipher.setAAD(Buffer.from(purpose, 'utf8'));
    decipher.setAuthTag(raw.subarray(raw.length - TAG));
    const plain = Buffer.concat([decipher.update(raw.subarray(HEADER, raw.length - TAG)), decipher.final()]);
    return { value: JSON.parse(plain.toString('utf8')) as unknown };
  } catch {
    return { failure: 'tampered' };
  }
}
