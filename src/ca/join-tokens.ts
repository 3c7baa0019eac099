// One-time join tokens: 256 random bits, base64url, stored only as `tokens/<sha256hex>.json` holding
// `{id, expiresAt}`. Consuming renames the file into `tokens/used/`: rename(2) is atomic, so among concurrent
// requests — in this process or in another replica sharing the directory — exactly one wins. A request that spent
// a token and then got no SVID (the CA could not sign) renames the same file back: the token is spent only for an
// SVID actually issued. `ca serve` removes records an hour past their expiry from both directories
// (join-token-prune.ts); a token whose record is gone answers token_unknown.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MeshauthError } from '../errors/index.js';
import { refuseCaId, SpiffeId } from '../identity/index.js';
import { caPaths, writeFileAtomic } from './ca-files.js';
import { readTrustDomain } from './trust-domain-file.js';

const TOKEN_BYTES = 32;
/** base64url of 32 bytes is 43 characters; anything else cannot be a token of ours and is not hashed or looked up. */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

export interface CreateJoinTokenOptions {
  readonly dir: string;
  readonly id: string | SpiffeId;
  readonly ttlMs: number;
  readonly now?: Date;
}

interface StoredToken {
  readonly id: string;
  readonly expiresAt: string;
}

/** Creates a token for `id` (which must be in the CA's trust domain) and returns it; only its hash is stored. */
export async function createJoinToken(options: CreateJoinTokenOptions): Promise<string> {
  const paths = caPaths(options.dir);
  const id = typeof options.id === 'string' ? SpiffeId.parse(options.id) : options.id;
  const trustDomain = await readTrustDomain(paths);
  if (!id.memberOf(trustDomain)) {
    throw new MeshauthError('MESHAUTH_ERR_SPIFFE_ID_INVALID', `${id} is not in this CA's trust domain ${trustDomain}`, {
      reason: 'trust_domain',
    });
  }
  if (id.isTrustDomainId) {
    throw new MeshauthError('MESHAUTH_ERR_SPIFFE_ID_INVALID', `${id} has no path: a workload ID needs one`, {
      reason: 'root_id',
    });
  }
  refuseCaId(id, trustDomain); // the CA would refuse to issue it for the token anyway (api.ts)
  const now = options.now ?? new Date();
  const token = randomBytes(TOKEN_BYTES).toString('base64url');
  const stored: StoredToken = { id: id.toString(), expiresAt: new Date(now.getTime() + options.ttlMs).toISOString() };
  await mkdir(paths.usedTokens, { recursive: true, mode: 0o700 });
  await writeFileAtomic(join(paths.tokens, `${hashToken(token)}.json`), `${JSON.stringify(stored)}\n`, 0o600);
  return token;
}

/** A join token one request has spent, and the way back for it when no SVID comes of it. */
export interface SpentJoinToken {
  readonly id: SpiffeId;
  /**
   * Undoes the spending rename: the same record (same identity, same expiry) moves back from `tokens/used/`, so the
   * token bootstraps once more, and still once. Only the request whose rename won holds this, so it never revives a
   * token someone else spent. Resolves false when the record could not be moved back (the token stays spent).
   */
  giveBack(): Promise<boolean>;
}

/**
 * Consumes a token: returns the SPIFFE ID it was created for, or throws MESHAUTH_ERR_CA_UNAUTHENTICATED with reason
 * token_unknown, token_used or token_expired. The token value never appears in an error or a log.
 */
export async function consumeJoinToken(
  dir: string,
  token: string,
  now: Date,
  check?: (id: SpiffeId) => void,
): Promise<SpiffeId> {
  return (await spendJoinToken(dir, token, now, check)).id;
}

/** consumeJoinToken for a caller that may still fail to issue the SVID: it can give the token back. */
export async function spendJoinToken(
  dir: string,
  token: string,
  now: Date,
  check?: (id: SpiffeId) => void,
): Promise<SpentJoinToken> {
  if (!TOKEN_SHAPE.test(token)) reject('token_unknown', 'join token is malformed');
  const paths = caPaths(dir);
  const name = `${hashToken(token)}.json`;
  const pending = join(paths.tokens, name);
  const used = join(paths.usedTokens, name);
  let stored: StoredToken;
  try {
    stored = JSON.parse(await readFile(pending, 'utf8')) as StoredToken;
  } catch {
    if (await exists(used)) reject('token_used', 'join token was already used');
    reject('token_unknown', 'join token is unknown');
  }
  if (!(now.getTime() < Date.parse(stored.expiresAt))) reject('token_expired', 'join token expired');
  const id = SpiffeId.parse(stored.id);
  // The caller's own checks (the identity asked for) come before the token is spent: a typo must not cost it.
  check?.(id);
  try {
    await rename(pending, used); // the single winner: every other concurrent rename finds the file gone
  } catch {
    reject('token_used', 'join token was already used');
  }
  let given = false;
  return {
    id,
    giveBack: async () => {
      if (given) return false;
      given = true;
      // rename(2) again, so no replica ever sees the record in both places: while it is spent a concurrent request
      // is told token_used (token_unknown if the record moves back between its read and its stat), never served.
      // Nothing else can have created `pending` meanwhile: its name is the hash of 256 random bits.
      return rename(used, pending).then(
        () => true,
        () => false,
      );
    },
  };
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

function reject(reason: 'token_unknown' | 'token_used' | 'token_expired', message: string): never {
  throw new MeshauthError('MESHAUTH_ERR_CA_UNAUTHENTICATED', message, { reason });
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
