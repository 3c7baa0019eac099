// What `ca issue` and `ca serve` check in their flags before any certificate code is loaded: the key types meshauth
// issues and accepts, and the longest X509-SVID lifetime (a mistyped `--key-type` or `--ttl` is refused at once).
import { MeshauthError } from '../errors/index.js';

export const KEY_TYPES = ['p256', 'ed25519', 'rsa2048'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

/** The longest lifetime of an X509-SVID the CA issues (bounds `ca issue --ttl` and `ca serve --svid-ttl`). */
export const SVID_MAX_TTL_MS = 24 * 3600_000;

export function parseKeyType(value: string): KeyType {
  if ((KEY_TYPES as readonly string[]).includes(value)) return value as KeyType;
  throw new MeshauthError(
    'MESHAUTH_ERR_KEY_TYPE',
    `unsupported key type "${value}": expected one of ${KEY_TYPES.join(', ')}`,
  );
}
