// The CA watching its own certificates, once a second from the server's timer: the expiry of the root and the
// intermediate in use as `meshauth_ca_certificate_expiry_timestamp_seconds{kind}`, a warning log line from 7 days
// before either expires (at most hourly), and — in the self-managed mode (`--auto-rotate-intermediate`, the CA holds
// root.key) — a new intermediate at half the current one's life. The new intermediate is written next to the old one
// (key, then certificate); the authority switches once it reads a consistent pair, and every request meanwhile is
// served with the old, still valid one: no request fails. A lock file keeps replicas sharing the directory from
// rotating at the same time.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MeshauthError } from '../errors/index.js';
import { parseCertificatesPem, type x509 } from '../pki/index.js';
import type { Logger, Metrics } from '../telemetry/index.js';
import type { CaAuthority } from './authority.js';
import { expiresSoon, halfLifeOf } from './ca-expiry.js';
import { caPaths } from './ca-files.js';
import { logHolderEnded } from './lock-holder.js';
import { rotateIntermediate } from './rotate.js';
import { acquireRotationLock, ROTATION_LOCK_FILE } from './rotation-lock.js';

const WARNING_INTERVAL_MS = 3600_000;
/**
 * How long the CA files on disk may stay unloadable before the issuer counts as invalid: a rotation writes the new
 * key, then its certificate, and a reload between the two sees a pair that does not fit for a moment.
 */
const UNLOADABLE_GRACE_MS = 3_000;
const RETRY_AFTER_FAILURE_MS = 30_000;

export interface CertificateWatchOptions {
  readonly dir: string;
  readonly authority: CaAuthority;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly now: () => Date;
  /** Lifetime of intermediates minted by auto-rotation; undefined: no auto-rotation. */
  readonly autoRotateTtlMs?: number;
}

export class CertificateWatch {
  readonly #options: CertificateWatchOptions;
  readonly #lastWarned = new Map<string, number>();
  #rotating: Promise<void> | undefined;
  #notBefore = 0;
  /** The reason the issuer was last judged invalid ('' valid, undefined not judged yet). */
  #issuerProblem: string | undefined;

  constructor(options: CertificateWatchOptions) {
    this.#options = options;
    // Both results from 0 when rotating: the shipped alert takes increase(), which a series born at 1 never shows.
    if (options.autoRotateTtlMs !== undefined) {
      for (const result of ['success', 'failure']) options.metrics.caIntermediateRotations.inc({ result }, 0);
    }
  }

  /** Updates the gauges, warns, and starts a rotation when due. Never throws. */
  check(): void {
    const { authority, metrics, now } = this.#options;
    const material = authority.material;
    const current = now();
    const certificates: [kind: 'root' | 'intermediate', cert: x509.X509Certificate][] = [
      ['root', material.root],
      ['intermediate', material.issuer.certificate],
    ];
    for (const [kind, cert] of certificates) {
      metrics.caCertificateExpiry.set({ kind }, Math.floor(cert.notAfter.getTime() / 1000));
      if (expiresSoon(cert, current)) this.#warn(kind, cert, current);
    }
    this.#judgeIssuer(current);
    if (this.#options.autoRotateTtlMs === undefined || this.#rotating !== undefined) return;
    if (Date.now() < this.#notBefore) return;
    if (current.getTime() < halfLifeOf(material.issuer.certificate).getTime()) return;
    this.#rotating = this.#rotate(material.issuer.certificate.serialNumber).finally(() => {
      this.#rotating = undefined;
    });
  }

  /**
   * meshauth_ca_issuer_valid, and one error line when the issuer becomes invalid (one info line when it is valid
   * again): an intermediate that cannot sign now refuses every CSR, and files on disk that do not load leave the CA
   * signing with an intermediate nobody can rotate until they are fixed. Either needs an operator.
   */
  #judgeIssuer(now: Date): void {
    const { authority, metrics, logger } = this.#options;
    let problem = '';
    let detail: Record<string, unknown> = {};
    try {
      authority.assertCanSign(now);
    } catch (error) {
      problem = (error as MeshauthError).reason ?? 'unusable';
      detail = { err: error };
    }
    const unloadable = authority.unloadable;
    if (problem === '' && unloadable !== undefined && Date.now() - unloadable.since >= UNLOADABLE_GRACE_MS) {
      problem = (unloadable.error as MeshauthError).reason ?? 'unloadable';
      detail = { err: unloadable.error, since: new Date(unloadable.since).toISOString() };
    }
    metrics.setCaIssuerValid(problem === '');
    if (problem === this.#issuerProblem) return;
    const first = this.#issuerProblem === undefined;
    this.#issuerProblem = problem;
    const serial = authority.material.issuer.certificate.serialNumber;
    if (problem !== '') {
      logger.error(
        { event: 'ca_issuer_invalid', reason: problem, serial, ...detail },
        unloadable !== undefined && detail.since !== undefined
          ? 'the CA files on disk hold an intermediate that cannot be loaded; the last good one signs on: fix or rotate it (meshauth ca rotate --intermediate)'
          : 'the CA intermediate cannot sign now; every CSR is refused until it is rotated (meshauth ca rotate --intermediate)',
      );
    } else if (!first) {
      logger.info({ event: 'ca_issuer_valid', serial }, 'the CA intermediate is valid again');
    }
  }

  /** Resolves once a rotation in progress (if any) has finished; for shutdown. */
  async settle(): Promise<void> {
    await this.#rotating;
  }

  #warn(kind: string, cert: x509.X509Certificate, now: Date): void {
    const key = `${kind}:${cert.serialNumber}`;
    const last = this.#lastWarned.get(key);
    if (last !== undefined && Date.now() - last < WARNING_INTERVAL_MS) return;
    this.#lastWarned.set(key, Date.now());
    const hoursLeft = Math.floor((cert.notAfter.getTime() - now.getTime()) / 3600_000);
    const fix =
      kind === 'intermediate'
        ? 'mint the next one: meshauth ca rotate --intermediate (or run with --auto-rotate-intermediate)'
        : 'rotate the root: meshauth ca rotate --root, then --root --activate (docs/ca.md)';
    this.#options.logger.warn(
      {
        event: 'ca_certificate_expiring',
        kind,
        serial: cert.serialNumber,
        notAfter: cert.notAfter.toISOString(),
        hoursLeft,
      },
      `the CA ${kind} certificate expires in ${hoursLeft} h: ${fix}`,
    );
  }

  async #rotate(fromSerial: string): Promise<void> {
    const { dir, authority, metrics, logger, now } = this.#options;
    const started = Date.now();
    try {
      const lock = await acquireRotationLock(join(dir, ROTATION_LOCK_FILE), {
        onHolderEnded: logHolderEnded(logger, { event: 'rotation_lock_broken', lock: ROTATION_LOCK_FILE }),
      });
      if (lock === undefined) return; // another replica is rotating; its result is picked up on reload
      try {
        await authority.refresh();
        // Someone else may have rotated already (another replica, or `ca rotate`): judge the certificate on disk now.
        // Not the authority's material: its reloads are checked once a second, so it can predate that rotation, and
        // judging it minted a second intermediate right over theirs.
        const onDisk = await intermediateOnDisk(dir);
        if (
          onDisk !== undefined &&
          onDisk.serialNumber !== fromSerial &&
          now().getTime() < halfLifeOf(onDisk).getTime()
        ) {
          return;
        }
        const result = await rotateIntermediate(dir, now(), this.#options.autoRotateTtlMs);
        metrics.caIntermediateRotations.inc({ result: 'success' });
        logger.info(
          {
            event: 'intermediate_rotated',
            previousSerial: fromSerial,
            serial: result.serial,
            durationMs: Date.now() - started,
          },
          'new intermediate minted at half-life (--auto-rotate-intermediate)',
        );
      } finally {
        if ((await lock.release()) === 'taken_over') {
          // This rotation outlived STALE_LOCK_MS and another replica may have rotated at the same time.
          logger.warn(
            { event: 'intermediate_rotation_lock_taken_over', lock: ROTATION_LOCK_FILE },
            'another replica broke the rotation lock as stale while this one was rotating',
          );
        }
      }
    } catch (error) {
      this.#notBefore = Date.now() + RETRY_AFTER_FAILURE_MS;
      metrics.caIntermediateRotations.inc({ result: 'failure' });
      logger.error({ event: 'intermediate_rotation_failed', err: error }, 'cannot rotate the intermediate; retrying');
    }
  }
}

/** intermediate.crt as it is on disk; undefined when it cannot be read or parsed (a rotation replaces it). */
async function intermediateOnDisk(dir: string): Promise<x509.X509Certificate | undefined> {
  try {
    return parseCertificatesPem(await readFile(caPaths(dir).intermediateCert, 'utf8'))[0];
  } catch {
    return undefined;
  }
}
