// The JWT-SVID keys of a running CA: the active signing key (`jwt.key`) and the retired keys still published
// (`jwt-retired.json`). Like CaAuthority it picks up a rotation done by another process (`ca rotate --jwt-key`) by
// re-reading the files when they change, checked at most once a second; a half-done rotation keeps the old state.
import { stat } from 'node:fs/promises';
import type { JWK } from 'jose';
import { SingleFlight } from '../platform/index.js';
import type { Logger } from '../telemetry/index.js';
import { readCaFileIfPresent } from './ca-dir-file.js';
import { caPaths, PUBLIC_FILE_MODE, writeFileAtomic } from './ca-files.js';
import {
  liveRetiredKeys,
  parseRetiredKeys,
  RETIRED_KEY_RETENTION_MS,
  type RetiredJwtKey,
  retire,
} from './jwt-retired-keys.js';
import {
  deriveJwtSigningKey,
  type JwtSigningKey,
  loadOrCreateJwtSigningKey,
  parseJwtSigningKey,
  readJwtKeyFile,
  writeNewJwtSigningKey,
} from './jwt-signing-key.js';

const RELOAD_CHECK_INTERVAL_MS = 1000;

export class JwtKeyRing {
  readonly #dir: string;
  readonly #logger: Logger;
  #active: JwtSigningKey;
  #retired: readonly RetiredJwtKey[];
  #memoryRetired: readonly RetiredJwtKey[] = [];
  #fingerprint: string;
  readonly #reload = new SingleFlight(() => this.#reloadIfChanged(), RELOAD_CHECK_INTERVAL_MS);

  private constructor(
    dir: string,
    logger: Logger,
    active: JwtSigningKey,
    retired: readonly RetiredJwtKey[],
    fp: string,
  ) {
    this.#dir = dir;
    this.#logger = logger;
    this.#active = active;
    this.#retired = retired;
    this.#fingerprint = fp;
  }

  /** `create`: write jwt.key when missing (a directory `ca init` made); otherwise a missing key is held in memory. */
  static async open(dir: string, logger: Logger, create = true): Promise<JwtKeyRing> {
    const active = await loadOrCreateJwtSigningKey(dir, logger, create);
    const fingerprint = await keyFilesFingerprint(dir);
    return new JwtKeyRing(dir, logger, active, await readRetired(dir), fingerprint);
  }

  /** The key that signs new JWT-SVIDs. */
  get signingKey(): JwtSigningKey {
    return this.#active;
  }

  /** `GET /v1/jwks`: the active key first, then every retired key whose tokens may still be live. */
  jwks(now: Date): { keys: Readonly<JWK>[] } {
    const retired = [...this.#retired, ...this.#memoryRetired];
    return { keys: [this.#active.publicJwk, ...liveRetiredKeys(retired, this.#active.kid, now)] };
  }

  /** Reloads the key files if they changed since the last check; at most once per second. Never throws. */
  refresh(): Promise<void> {
    return this.#reload.run();
  }

  async #reloadIfChanged(): Promise<void> {
    try {
      const fingerprint = await keyFilesFingerprint(this.#dir);
      if (fingerprint === this.#fingerprint) return;
      const file = caPaths(this.#dir).jwtKey;
      const pem = await readJwtKeyFile(file);
      // No jwt.key on disk (a Secret's copy): the key derived from the intermediate, which may have rotated.
      const active =
        pem === undefined
          ? ((await deriveJwtSigningKey(this.#dir)) ?? this.#active)
          : await parseJwtSigningKey(pem, file);
      const retired = await readRetired(this.#dir);
      const previousKid = this.#active.kid;
      if (pem === undefined && active.kid !== previousKid) {
        // Nobody wrote jwt-retired.json for a derived key: keep the previous one published here, as long as a
        // file-based rotation would.
        this.#memoryRetired = [
          ...this.#memoryRetired,
          { jwk: this.#active.publicJwk, until: new Date(Date.now() + RETIRED_KEY_RETENTION_MS) },
        ].slice(-8);
      }
      this.#active = active;
      this.#retired = retired;
      this.#fingerprint = fingerprint;
      if (active.kid !== previousKid) {
        this.#logger.info(
          { event: 'jwt_key_reloaded', kid: active.kid, previousKid, retiredKeys: retired.length },
          'JWT-SVID signing key changed',
        );
      }
    } catch (error) {
      this.#logger.warn({ event: 'jwt_key_reload_failed', err: error }, 'JWT key files changed but cannot be loaded');
    }
  }
}

export interface JwtKeyRotation {
  readonly previousKid: string;
  readonly kid: string;
  /** Until when `/v1/jwks` keeps publishing the previous key. */
  readonly previousPublishedUntil: Date;
}

/**
 * `ca rotate --jwt-key`: the old key's public half goes into jwt-retired.json first (so it is never missing from the
 * JWKS), then a new jwt.key replaces the old one and signs from the next request of every replica.
 */
export async function rotateJwtSigningKey(dir: string, now = new Date()): Promise<JwtKeyRotation> {
  const paths = caPaths(dir);
  const old = await loadOrCreateJwtSigningKey(dir);
  const retiredText = retire(await readRetired(dir), old.publicJwk, now);
  await writeFileAtomic(paths.jwtRetired, retiredText, PUBLIC_FILE_MODE);
  await writeNewJwtSigningKey(dir);
  const next = await loadOrCreateJwtSigningKey(dir);
  const entry = parseRetiredKeys(retiredText, paths.jwtRetired).find((key) => key.jwk.kid === old.kid);
  return { previousKid: old.kid, kid: next.kid, previousPublishedUntil: entry?.until ?? now };
}

async function readRetired(dir: string): Promise<RetiredJwtKey[]> {
  const file = caPaths(dir).jwtRetired;
  const text = readCaFileIfPresent(file);
  return text === undefined ? [] : parseRetiredKeys(text, file);
}

async function keyFilesFingerprint(dir: string): Promise<string> {
  const paths = caPaths(dir);
  const stats = await Promise.all(
    // intermediate.key too: without jwt.key the signing key is derived from it.
    [paths.jwtKey, paths.jwtRetired, paths.intermediateKey].map((file) =>
      stat(file).then(
        (s) => `${s.ino}:${s.mtimeMs}:${s.size}`,
        () => 'missing',
      ),
    ),
  );
  return stats.join('|');
}
