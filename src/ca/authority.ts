// The signing authority of a running CA: holds the current intermediate, key and bundle, and picks up a rotation
// done by another process (`ca rotate`) by re-reading the files when they change — checked at most once a second.
// A half-written rotation (new key, old certificate) fails the consistency check and the old material stays.
import { MeshauthError } from '../errors/index.js';
import type { SpiffeId } from '../identity/index.js';
import { certificatePem, issueLeafDer, x509 } from '../pki/index.js';
import { fileVersions, SingleFlight } from '../platform/index.js';
import type { Logger } from '../telemetry/index.js';
import { caPaths } from './ca-files.js';
import { logHolderEnded } from './lock-holder.js';
import { ROTATION_LOCK_FILE, withRotationLock } from './rotation-lock.js';
import { type CaMaterial, loadCaMaterial } from './store.js';

const RELOAD_CHECK_INTERVAL_MS = 1000;

export interface IssueRequest {
  readonly id: SpiffeId;
  /** The subject's key: a CryptoKey, a parsed SPKI, or the SPKI's DER bytes (as taken from a verified CSR). */
  readonly publicKey: CryptoKey | x509.PublicKey | Uint8Array;
  readonly ttlMs: number;
  readonly now: Date;
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
}

export interface IssuedSvid {
  /** The leaf, parsed on first use (the API answers with PEM and logs the serial: it needs no parse). */
  readonly leaf: x509.X509Certificate;
  /** Hex serial of the leaf, as leaf.serialNumber reports it. */
  readonly serialNumber: string;
  /** Leaf then intermediate, PEM. */
  readonly certChainPem: readonly [string, string];
  /** Every trusted root, PEM. */
  readonly bundlePem: readonly string[];
  readonly expiresAt: Date;
}

/** CA files on disk that cannot be loaded: which state of the files, since when (ms since epoch), why. */
export interface UnloadableFiles {
  readonly fingerprint: string;
  readonly since: number;
  readonly error: unknown;
}

export class CaAuthority {
  readonly #dir: string;
  readonly #logger: Logger;
  #material: CaMaterial;
  #fingerprint: string;
  #generation = 0;
  readonly #reload = new SingleFlight(() => this.#reloadIfChanged(), RELOAD_CHECK_INTERVAL_MS);
  /** The files on disk changed and cannot be loaded (cleared by the next successful load). */
  #unloadable: UnloadableFiles | undefined;

  private constructor(dir: string, logger: Logger, material: CaMaterial, fingerprint: string) {
    this.#dir = dir;
    this.#logger = logger;
    this.#material = material;
    this.#fingerprint = fingerprint;
  }

  static async open(dir: string, logger: Logger): Promise<CaAuthority> {
    const load = async () => {
      const fingerprint = filesFingerprint(dir);
      return new CaAuthority(dir, logger, await loadCaMaterial(dir), fingerprint);
    };
    try {
      return await load();
    } catch (error) {
      // Started while another process is between a rotation's new key and its certificate (`ca rotate`, a replica
      // auto-rotating): the files fit together again once its lock is released, so read them once more under it
      // instead of refusing to start. A directory torn for good is still refused, after that one wait.
      if (!(error instanceof MeshauthError && error.reason === 'inconsistent')) throw error;
      logger.info(
        { event: 'ca_directory_inconsistent_at_start', dir },
        'CA directory files do not fit together; waiting for a rotation in progress, then reading them again',
      );
      return withRotationLock(dir, load, {
        onHolderEnded: logHolderEnded(logger, { event: 'rotation_lock_broken', lock: ROTATION_LOCK_FILE }),
      });
    }
  }

  get material(): CaMaterial {
    return this.#material;
  }

  /** Increases each time new material is loaded (the server re-issues its own certificate then). */
  get generation(): number {
    return this.#generation;
  }

  /**
   * Set while the CA files on disk differ from the material in use and cannot be loaded (key not the certificate's,
   * intermediate not under a root of bundle.pem, unreadable): `since` is when that was first seen.
   */
  get unloadable(): UnloadableFiles | undefined {
    return this.#unloadable;
  }

  /** Reloads the files if they changed since the last check; checks at most once per second. Never throws. */
  refresh(): Promise<void> {
    return this.#reload.run();
  }

  async #reloadIfChanged(): Promise<void> {
    try {
      const fingerprint = filesFingerprint(this.#dir);
      if (fingerprint === this.#fingerprint) {
        this.#unloadable = undefined; // the files in use are back
        return;
      }
      let material: CaMaterial;
      try {
        material = await loadCaMaterial(this.#dir);
      } catch (error) {
        // Most likely a rotation in progress; the previous material keeps signing and the next check retries.
        // Logged once per state of the files (the check runs every second); CertificateWatch turns a state that
        // lasts into meshauth_ca_issuer_valid 0 and an error line.
        if (this.#unloadable?.fingerprint !== fingerprint) {
          this.#logger.warn({ event: 'ca_reload_failed', err: error }, 'CA files changed but cannot be loaded yet');
        }
        this.#unloadable = { fingerprint, since: this.#unloadable?.since ?? Date.now(), error };
        return;
      }
      this.#unloadable = undefined;
      this.#material = material;
      this.#fingerprint = fingerprint;
      this.#generation += 1;
      this.#logger.info(
        {
          event: 'ca_reloaded',
          intermediateSerial: material.issuer.certificate.serialNumber,
          intermediateNotAfter: material.issuer.certificate.notAfter.toISOString(),
          roots: material.bundle.roots.length,
        },
        'CA material reloaded',
      );
    } catch (error) {
      this.#logger.warn({ event: 'ca_reload_failed', err: error }, 'CA files changed but cannot be checked');
    }
  }

  /**
   * Throws MESHAUTH_ERR_CA_UNAVAILABLE (`intermediate_expired`, `intermediate_not_yet_valid`) when the intermediate
   * cannot sign a usable leaf at `now`: a leaf's NotAfter is clamped to the intermediate's, so an expired one would
   * sign leaves that expired before they began. The API checks it before the caller's credential is spent (a join
   * token is single-use); the CA's own serving certificate is still issued, so the CA starts, serves its bundle and
   * answers /readyz 503 until the intermediate is rotated.
   */
  assertCanSign(now: Date): void {
    const { notBefore, notAfter } = this.#material.issuer.certificate;
    const at = now.getTime();
    const unusable = (why: string, reason: string) => new MeshauthError('MESHAUTH_ERR_CA_UNAVAILABLE', why, { reason });
    if (at < notBefore.getTime()) {
      throw unusable(`the intermediate is valid from ${notBefore.toISOString()}`, 'intermediate_not_yet_valid');
    }
    if (at >= notAfter.getTime()) {
      throw unusable(`the intermediate expired ${notAfter.toISOString()}`, 'intermediate_expired');
    }
  }

  /** Signs a leaf X509-SVID. The caller has authenticated `id`; this checks it belongs to the trust domain. */
  async issue(request: IssueRequest): Promise<IssuedSvid> {
    const material = this.#material;
    if (!request.id.memberOf(material.trustDomain) || request.id.isTrustDomainId) {
      throw new MeshauthError(
        'MESHAUTH_ERR_SPIFFE_ID_INVALID',
        `${request.id} is not a workload ID of trust domain ${material.trustDomain}`,
        { reason: 'trust_domain' },
      );
    }
    const options = {
      id: request.id,
      publicKey: request.publicKey,
      issuer: material.issuer,
      now: request.now,
      ttlMs: request.ttlMs,
      ...(request.dnsNames === undefined ? {} : { dnsNames: request.dnsNames }),
      ...(request.ipAddresses === undefined ? {} : { ipAddresses: request.ipAddresses }),
    };
    const signed = await issueLeafDer(options);
    return issuedSvid(signed.der, signed.serialNumber, signed.notAfter, material);
  }
}

/** An IssuedSvid from a signed leaf's DER: PEM by base64 alone, the x509 object only if someone asks for it. */
export function issuedSvid(der: Uint8Array, serialNumber: string, notAfter: Date, material: CaMaterial): IssuedSvid {
  let leaf: x509.X509Certificate | undefined;
  return {
    get leaf() {
      leaf ??= new x509.X509Certificate(new Uint8Array(der));
      return leaf;
    },
    serialNumber,
    certChainPem: [`${certificatePem(der)}\n`, `${material.intermediatePem}\n`],
    bundlePem: material.bundle.toPemList(),
    expiresAt: notAfter,
  };
}

function filesFingerprint(dir: string): string {
  const paths = caPaths(dir);
  return fileVersions([paths.intermediateCert, paths.intermediateKey, paths.bundle]);
}
