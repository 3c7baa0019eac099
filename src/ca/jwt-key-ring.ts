// The JWT-SVID keys of a running CA: the active signing key (`jwt.key`), a new key waiting out its publication delay,
// and the retired keys still published (`jwt-retired.json`, plus the ones this process stopped signing with). Like
// CaAuthority it picks up a rotation done by another process (`ca rotate --jwt-key`, or an intermediate rotation when
// the key is derived) by re-reading the files when they change, checked at most once a second; a half-done rotation
// keeps the old state. A new key is published at once and signs only JWT_KEY_PUBLICATION_DELAY_MS later.
import type { JWK } from 'jose';
import { fileVersions, SingleFlight } from '../platform/index.js';
import type { Logger } from '../telemetry/index.js';
import { readCaFileIfPresent } from './ca-dir-file.js';
import { caPaths, PUBLIC_FILE_MODE, writeFileAtomic } from './ca-files.js';
import {
  JWT_KEY_PUBLICATION_DELAY_MS,
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
/** Keys this process retired itself (in-memory entries); a rotation every minute still fits. */
const MAX_MEMORY_RETIRED = 8;

/** A key read from the files that is published but does not sign yet. */
interface PendingKey {
  readonly key: JwtSigningKey;
  readonly signsFrom: Date;
}

export class JwtKeyRing {
  readonly #dir: string;
  readonly #logger: Logger;
  readonly #clock: () => Date;
  #active: JwtSigningKey;
  #pending: PendingKey | undefined;
  #retired: readonly RetiredJwtKey[];
  #memoryRetired: readonly RetiredJwtKey[] = [];
  #fingerprint: string;
  readonly #reload = new SingleFlight(() => this.#reloadIfChanged(), RELOAD_CHECK_INTERVAL_MS);

  private constructor(
    dir: string,
    logger: Logger,
    clock: () => Date,
    active: JwtSigningKey,
    retired: readonly RetiredJwtKey[],
    fp: string,
  ) {
    this.#dir = dir;
    this.#logger = logger;
    this.#clock = clock;
    this.#active = active;
    this.#retired = retired;
    this.#fingerprint = fp;
  }

  /**
   * `create`: write jwt.key when missing (a directory `ca init` made); otherwise a missing key is held in memory.
   * `clock`: the CA's clock (`ca serve`'s `now`), which dates when a key read from the files starts signing.
   */
  static async open(dir: string, logger: Logger, create = true, clock = () => new Date()): Promise<JwtKeyRing> {
    const active = await loadOrCreateJwtSigningKey(dir, logger, create);
    const fingerprint = keyFilesFingerprint(dir);
    return new JwtKeyRing(dir, logger, clock, active, await readRetired(dir), fingerprint);
  }

  /** The key that signs a JWT-SVID at `now`. */
  signingKey(now: Date): JwtSigningKey {
    this.#switchIfDue(now);
    return this.#active;
  }

  /**
   * `GET /v1/jwks`: the key signing at `now` first, then a key about to sign, then every retired key whose tokens may
   * still be live.
   */
  jwks(now: Date): { keys: Readonly<JWK>[] } {
    this.#switchIfDue(now);
    const pending = this.#pending?.key;
    const retired = liveRetiredKeys([...this.#retired, ...this.#memoryRetired], this.#active.kid, now).filter(
      (jwk) => jwk.kid !== pending?.kid,
    );
    return { keys: [this.#active.publicJwk, ...(pending === undefined ? [] : [pending.publicJwk]), ...retired] };
  }

  /** Reloads the key files if they changed since the last check; at most once per second. Never throws. */
  refresh(): Promise<void> {
    return this.#reload.run();
  }

  async #reloadIfChanged(): Promise<void> {
    try {
      const fingerprint = keyFilesFingerprint(this.#dir);
      if (fingerprint === this.#fingerprint) return;
      const file = caPaths(this.#dir).jwtKey;
      const pem = await readJwtKeyFile(file);
      // No jwt.key on disk (a Secret's copy): the key derived from the intermediate, which may have rotated.
      const loaded =
        pem === undefined
          ? ((await deriveJwtSigningKey(this.#dir)) ?? this.#active)
          : await parseJwtSigningKey(pem, file);
      const retired = await readRetired(this.#dir);
      this.#retired = retired;
      this.#fingerprint = fingerprint;
      this.#stage(loaded, this.#clock());
    } catch (error) {
      this.#logger.warn({ event: 'jwt_key_reload_failed', err: error }, 'JWT key files changed but cannot be loaded');
    }
  }

  /** A key read from the files: published from `now`, signing from `now` + the publication delay. */
  #stage(loaded: JwtSigningKey, now: Date): void {
    if (loaded.kid === this.#active.kid) {
      // Back to the key that signs (a rotation undone before its key signed): nothing is pending any more.
      this.#pending = undefined;
      return;
    }
    if (loaded.kid === this.#pending?.key.kid) return;
    // A key replacing one still pending never signed a token, so it needs no retention.
    const signsFrom = new Date(now.getTime() + JWT_KEY_PUBLICATION_DELAY_MS);
    this.#pending = { key: loaded, signsFrom };
    this.#logger.info(
      { event: 'jwt_key_published', kid: loaded.kid, activeKid: this.#active.kid, signsFrom: signsFrom.toISOString() },
      'new JWT-SVID signing key read: published in /v1/jwks now, signing from signsFrom',
    );
  }

  #switchIfDue(now: Date): void {
    const pending = this.#pending;
    if (pending === undefined || now.getTime() < pending.signsFrom.getTime()) return;
    const previous = this.#active;
    // The previous key signed its last token here just before signsFrom: keep it published for a token's lifetime
    // from then, whatever the file says (with a Secret, `ca rotate` may have run long before this replica switched).
    this.#memoryRetired = [
      ...this.#memoryRetired,
      { jwk: previous.publicJwk, until: new Date(pending.signsFrom.getTime() + RETIRED_KEY_RETENTION_MS) },
    ].slice(-MAX_MEMORY_RETIRED);
    this.#active = pending.key;
    this.#pending = undefined;
    this.#logger.info(
      { event: 'jwt_key_reloaded', kid: pending.key.kid, previousKid: previous.kid, retiredKeys: this.#retired.length },
      'JWT-SVID signing key changed',
    );
  }
}

export interface JwtKeyRotation {
  readonly previousKid: string;
  readonly kid: string;
  /**
   * About when the new key starts signing: each running replica publishes it within a second of the rotation (with
   * a Secret: once its kubelet delivered the update) and signs with it JWT_KEY_PUBLICATION_DELAY_MS after that.
   */
  readonly signsFrom: Date;
  /** Until when `/v1/jwks` keeps publishing the previous key, at least. */
  readonly previousPublishedUntil: Date;
}

/**
 * `ca rotate --jwt-key`: the old key's public half goes into jwt-retired.json first (so it is never missing from the
 * JWKS), then a new jwt.key replaces the old one; every running replica publishes it within its one-second file check
 * (`ca serve`'s timer, or a request) and signs with it after the publication delay.
 */
export async function rotateJwtSigningKey(dir: string, now = new Date()): Promise<JwtKeyRotation> {
  const paths = caPaths(dir);
  const old = await loadOrCreateJwtSigningKey(dir);
  const retiredText = retire(await readRetired(dir), old.publicJwk, now);
  await writeFileAtomic(paths.jwtRetired, retiredText, PUBLIC_FILE_MODE);
  await writeNewJwtSigningKey(dir);
  const next = await loadOrCreateJwtSigningKey(dir);
  const entry = parseRetiredKeys(retiredText, paths.jwtRetired).find((key) => key.jwk.kid === old.kid);
  return {
    previousKid: old.kid,
    kid: next.kid,
    signsFrom: new Date(now.getTime() + JWT_KEY_PUBLICATION_DELAY_MS),
    previousPublishedUntil: entry?.until ?? now,
  };
}

async function readRetired(dir: string): Promise<RetiredJwtKey[]> {
  const file = caPaths(dir).jwtRetired;
  const text = readCaFileIfPresent(file);
  return text === undefined ? [] : parseRetiredKeys(text, file);
}

function keyFilesFingerprint(dir: string): string {
  const paths = caPaths(dir);
  // intermediate.key too: without jwt.key the signing key is derived from it.
  return fileVersions([paths.jwtKey, paths.jwtRetired, paths.intermediateKey]);
}
