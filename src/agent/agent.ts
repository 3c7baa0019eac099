// The workload's certificate lifecycle: bootstrap an X509-SVID with the bootstrap credential,
// renew it over mTLS at about half its lifetime with a fresh in-memory key, refresh the trust bundle, and survive
// a CA outage by keeping the current SVID and retrying with backoff capped by its remaining life.
// It owns no listener: it writes the CredentialHolder, which the TLS side subscribes to.
import { randomInt } from 'node:crypto';
import { causeChain, errorMessage, MeshauthError } from '../errors/index.js';
import type { SpiffeId, TrustDomain } from '../identity/index.js';
import {
  type KeyType,
  type KeyWithCsr,
  newKeyWithCsr,
  TrustBundle,
  validateX509SvidDer,
  type x509,
} from '../pki/index.js';
import type { Logger, Metrics } from '../telemetry/index.js';
import {
  type CaConnection,
  caChainUntrusted,
  caRetryAfterMsOf,
  caStatusOf,
  fetchBundle,
  requestSvid,
  type SvidResponse,
} from './ca-client.js';
import { readBundleFile, readTokenFileWithMode } from './credential-files.js';
import { type CredentialHolder, type Credentials, CredentialsApplyError } from './credential-holder.js';
import { bootstrapRefusedMessage, renewalRefusedHint } from './refusal-hints.js';
import {
  bundleRefreshDelay,
  bundleRefreshInterval,
  REMAINING_LIFE_CAP,
  renewalDelay,
  retryAfterDelay,
  retryDelay,
  WALL_CLOCK_CHECK_MS,
} from './schedule.js';
import { acceptSvidResponse, parseBundle } from './svid-response.js';

export interface AgentOptions {
  readonly trustDomain: TrustDomain;
  /** `https://host:port` of the CA API. */
  readonly caUrl: string;
  /** PEM roots that anchor the CA at bootstrap (`ca.bundle`). */
  readonly bundleFile: string;
  /**
   * The setting bundleFile came from (`ca.bundle`): named with the file when the CA's certificate does not chain to
   * it, so the log line says which setting to fix.
   */
  readonly bundleSetting?: string;
  /** File holding the bootstrap credential, re-read at each bootstrap (`ca.token`). */
  readonly tokenFile: string;
  /** The setting tokenFile came from (`ca.token`): named with the file when it cannot be read or others may read it. */
  readonly tokenSetting?: string;
  readonly holder: CredentialHolder;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly keyType?: KeyType;
  readonly now?: () => Date;
  /** Uniform in [0, 1): the jitter of every wait (default: the CSPRNG). A test pins it to place a refresh. */
  readonly random?: () => number;
  /**
   * Longest wait between two fetches of GET /v1/bundle (default 5 min) until a fetch brings the CA's
   * `spiffe_refresh_hint`, which replaces it; the first fetch comes at a random point of it.
   */
  readonly bundleRefreshMs?: number;
  /** Longest wait between two attempts (default 30 s); while the SVID is valid, a quarter of its remaining life caps it too. */
  readonly maxBackoffMs?: number;
  /** Wait cap of the first retry, doubled per attempt (default 500 ms). */
  readonly minBackoffMs?: number;
  /** Timeout of one CA request (default 10 s). */
  readonly requestTimeoutMs?: number;
}

const DEFAULTS = {
  keyType: 'p256',
  bundleRefreshMs: 5 * 60_000,
  maxBackoffMs: 30_000,
  minBackoffMs: 500,
  requestTimeoutMs: 10_000,
} as const;

/** A CA `Date` this far from our clock is worth a log line (the CA back-dates NotBefore by one minute). */
const SKEW_WARN_MS = 60_000;

type Mode = 'bootstrap' | 'renewal';

/** Roots remembered as dropped by the CA (retired), newest kept. */
const MAX_DROPPED_ROOTS = 64;

/** The bounded results of meshauth_bundle_refreshes_total besides `ok`: reasons the agent's errors carry, and `error`. */
const BUNDLE_REFRESH_FAILURES = new Set([
  'unreachable',
  'tls',
  'malformed',
  'no_certificate',
  'bundle_without_ca_root',
  'apply_failure',
  'error',
]);

export class Agent {
  readonly #options: AgentOptions;
  readonly #keyType: KeyType;
  readonly #now: () => Date;
  readonly #random: () => number;
  readonly #logger: Logger;
  #state: 'idle' | 'running' | 'closed' = 'idle';
  #rotationTimer: NodeJS.Timeout | undefined;
  #bundleTimer: NodeJS.Timeout | undefined;
  readonly #controllers = new Set<AbortController>();
  readonly #tasks = new Set<Promise<void>>();
  /** Consecutive failed attempts. */
  #failures = 0;
  /** Set when the CA refused our SVID for renewal: the next attempt uses the bootstrap credential. */
  #bootstrapNext = false;
  /**
   * An SVID the CA issued that could not be applied, kept while it is valid: the next attempt renews with it. Without
   * it an agent whose first SVID failed to apply would bootstrap again, and a join token is single-use.
   */
  #unapplied: Credentials | undefined;
  #tokenWarned = false;
  /**
   * The CA renews only with the bootstrap credential (`ca serve --k8s-renew-with-token` answered a renewal with
   * MESHAUTH_ERR_CA_RENEWAL_TOKEN_REQUIRED): renewals are made as bootstraps with the token file, keeping the ID.
   */
  #renewWithToken = false;
  /** Set while the configured bundle file fails to read at renewals and refreshes: one warn line per such run. */
  #bundleFileUnreadable = false;
  /** Set once the token file's permissions were looked at: one warning per start, not one per bootstrap. */
  #tokenModeChecked = false;
  /** Set once the skew hint for a CA certificate not yet valid was logged; reset by the next success. */
  #caSkewWarned = false;
  /** One CA request for an SVID at a time; the running one schedules its successor when it ends. */
  #rotating = false;
  /** The CA's `spiffe_refresh_hint` from the last bundle fetch that carried one. */
  #bundleRefreshHintMs: number | undefined;
  /** Bumped whenever we install a bundle, so a slow bundle fetch cannot overwrite a newer one. */
  #bundleVersion = 0;
  /**
   * Roots the CA dropped from a bundle we held, or left out of its answer to a bootstrap that trusted them (a retired
   * root): never trusted again from the configured file.
   */
  #droppedRoots: TrustBundle | undefined;
  /** Roots held or dropped, in the order this agent first saw them: which of two is older, within one second. */
  #learned: TrustBundle | undefined;
  #ready = false;
  readonly #readyPromise: Promise<void>;
  #settleReady!: (error?: Error) => void;

  constructor(options: AgentOptions) {
    this.#options = options;
    this.#keyType = options.keyType ?? DEFAULTS.keyType;
    this.#now = options.now ?? (() => new Date());
    this.#random = options.random ?? randomFraction;
    this.#logger = options.logger;
    this.#readyPromise = new Promise<void>((resolve, reject) => {
      this.#settleReady = (error) => (error === undefined ? resolve() : reject(error));
    });
    // Whoever never awaits whenReady() must not get an unhandled rejection when the agent closes early.
    this.#readyPromise.catch(() => {});
    // Every result from 0: a series that appears at its first failure, already at 1, gives `increase()` (the shipped
    // alert's) nothing to rise from, so the first failure would not alert.
    for (const result of ['success', 'failure', 'apply_failure']) options.metrics.svidRotations.inc({ result }, 0);
    options.metrics.exposeBundleRefreshes();
    for (const result of ['ok', ...BUNDLE_REFRESH_FAILURES]) options.metrics.bundleRefreshes.inc({ result }, 0);
  }

  /** Starts bootstrap and the bundle refresh. Idempotent; does nothing after close(). */
  start(): void {
    if (this.#state !== 'idle') return;
    this.#state = 'running';
    this.#scheduleRotation(0);
    this.#scheduleBundleRefresh(true);
  }

  /** Resolves once the first SVID is in the holder; rejects with MESHAUTH_ERR_NOT_READY if closed before. */
  whenReady(): Promise<void> {
    return this.#readyPromise;
  }

  /** Cancels every timer and in-flight CA request. The holder keeps its last credentials. */
  async close(): Promise<void> {
    if (this.#state !== 'closed') {
      this.#state = 'closed';
      clearTimeout(this.#rotationTimer);
      clearTimeout(this.#bundleTimer);
      for (const controller of this.#controllers) controller.abort();
      if (!this.#ready) {
        this.#settleReady(
          new MeshauthError('MESHAUTH_ERR_NOT_READY', 'agent closed before it obtained an SVID', { reason: 'closed' }),
        );
      }
    }
    await Promise.allSettled([...this.#tasks]);
  }

  // --- scheduling ---

  /**
   * Rotates after `delayMs`, or once the wall clock reaches `renewAtMs` if that comes first (a renewal: the host may
   * be suspended, or its clock stepped forward, while the timer waits; see WALL_CLOCK_CHECK_MS).
   */
  #scheduleRotation(delayMs: number, renewAtMs?: number): void {
    if (this.#state !== 'running') return;
    clearTimeout(this.#rotationTimer);
    const dueAt = performance.now() + delayMs;
    const arm = (waitMs: number): void => {
      this.#rotationTimer = setTimeout(wake, waitMs);
      this.#rotationTimer.unref();
    };
    const wake = (): void => {
      const leftMs =
        renewAtMs === undefined ? 0 : Math.min(dueAt - performance.now(), renewAtMs - this.#now().getTime());
      if (leftMs > 0) arm(Math.min(leftMs, WALL_CLOCK_CHECK_MS));
      else this.#run((signal) => this.#rotate(signal));
    };
    arm(renewAtMs === undefined ? delayMs : Math.min(delayMs, WALL_CLOCK_CHECK_MS));
  }

  #scheduleBundleRefresh(first: boolean): void {
    if (this.#state !== 'running') return;
    const intervalMs = bundleRefreshInterval(
      this.#options.bundleRefreshMs ?? DEFAULTS.bundleRefreshMs,
      this.#bundleRefreshHintMs,
    );
    this.#bundleTimer = setTimeout(
      () =>
        this.#run(async (signal) => {
          await this.#refreshBundle(signal);
          this.#scheduleBundleRefresh(false);
        }),
      bundleRefreshDelay(intervalMs, first, this.#random()),
    );
    this.#bundleTimer.unref();
  }

  /** Runs one task with its own AbortController, tracked so close() can cancel and await it. */
  #run(task: (signal: AbortSignal) => Promise<void>): void {
    if (this.#state !== 'running') return;
    const controller = new AbortController();
    this.#controllers.add(controller);
    const promise = task(controller.signal)
      .catch((error: unknown) => this.#logger.error({ err: error }, 'agent task failed unexpectedly'))
      .finally(() => {
        this.#controllers.delete(controller);
        this.#tasks.delete(promise);
      });
    this.#tasks.add(promise);
  }

  // --- rotation ---

  async #rotate(signal: AbortSignal): Promise<void> {
    if (this.#rotating) return;
    this.#rotating = true;
    try {
      await this.#rotateOnce(signal);
    } finally {
      this.#rotating = false;
    }
  }

  async #rotateOnce(signal: AbortSignal): Promise<void> {
    const current = this.#renewalCredentials();
    const mode: Mode = current !== undefined && !this.#bootstrapNext ? 'renewal' : 'bootstrap';
    try {
      const issued =
        mode === 'renewal' && current !== undefined && !this.#renewWithToken
          ? { credentials: await this.#renew(current, signal), anchors: undefined }
          : await this.#bootstrap(signal);
      if (this.#state !== 'running') return;
      this.#install(issued.credentials, mode, issued.anchors);
    } catch (error) {
      if (this.#state !== 'running') return;
      if (mode === 'renewal' && !this.#renewWithToken && renewalNeedsToken(error)) {
        this.#renewWithToken = true;
        this.#logger.info(
          { tokenFile: this.#options.tokenFile },
          'the CA renews SVIDs only with the service-account token: renewing with it from now on',
        );
        await this.#rotateOnce(signal);
        return;
      }
      // Renewing with an SVID that was never applied is worth repeating only while the CA is out of reach or busy:
      // anything else may be that SVID itself (the reason it did not apply), and the bootstrap credential, if it can
      // still be used (a service-account token), is the way out.
      if (current !== undefined && current === this.#unapplied && !caOutOfReach(error)) this.#unapplied = undefined;
      this.#onFailure(error, mode);
    }
  }

  /**
   * What a renewal authenticates with: the held SVID, or one issued but not applied, whichever is valid and lasts
   * longer. Neither: a bootstrap.
   */
  #renewalCredentials(): Credentials | undefined {
    const now = this.#now();
    let best: Credentials | undefined;
    for (const candidate of [this.#options.holder.current, this.#unapplied]) {
      if (candidate === undefined || candidate.svid.remainingMs(now) <= 0) continue;
      if (best === undefined || candidate.svid.notAfter > best.svid.notAfter) best = candidate;
    }
    if (best !== this.#unapplied) this.#unapplied = undefined;
    return best;
  }

  /** The new credentials, and the roots that authenticated the CA (the configured file's among them). */
  async #bootstrap(signal: AbortSignal): Promise<{ credentials: Credentials; anchors: TrustBundle }> {
    const { trustDomain, bundleFile, bundleSetting, tokenFile, tokenSetting, holder } = this.#options;
    const configured = await readBundleFile(bundleFile, trustDomain, bundleSetting);
    // The configured roots, plus what the CA last told us (it may have added a root since the file was written). A
    // root the CA retired stays out, as in #caAnchors: the file may still list it, and a CA certificate under it
    // would be handed the bootstrap credential.
    const dropped = this.#droppedRoots;
    const kept = configured.roots.filter((root) => dropped?.hasRoot(root) !== true);
    const trusted = kept.length === configured.roots.length ? configured : new TrustBundle(trustDomain, kept);
    const anchors = mergeBundles(trusted, holder.current?.bundle);
    const { token, mode } = await readTokenFileWithMode(tokenFile, tokenSetting);
    this.#checkTokenMode(token, mode);
    const key = await newKeyWithCsr(this.#keyType);
    const response = await requestSvid(this.#connection(anchors.toPem(), signal), { csrPem: key.csrPem, token });
    // Bootstrapped again (after the CA refused a renewal, or an expiry), the SVID must keep the ID the holder has:
    // a CA that refused a renewal could otherwise move the workload to another identity through the bootstrap that
    // follows, which takes any ID of the trust domain.
    const credentials = this.#accept(response, key, holder.current?.svid.id);
    await this.#checkBundleAnchorsCa(anchors, credentials.bundle, signal);
    return { credentials, anchors };
  }

  async #renew(current: Credentials, signal: AbortSignal): Promise<Credentials> {
    const key = await newKeyWithCsr(this.#keyType);
    const connection = this.#connection((await this.#caAnchors(current.bundle)).toPem(), signal, {
      client: { clientCertPem: current.svid.certChainPem, clientKeyPem: current.svid.privateKeyPem },
    });
    const response = await requestSvid(connection, { csrPem: key.csrPem });
    const credentials = this.#accept(response, key, current.svid.id);
    await this.#checkBundleAnchorsCa(current.bundle, credentials.bundle, signal);
    return credentials;
  }

  #accept(response: SvidResponse, key: KeyWithCsr, expectedId: SpiffeId | undefined): Credentials {
    const now = this.#now();
    this.#checkSkew(response.serverDate, now);
    try {
      return acceptSvidResponse(response, {
        trustDomain: this.#options.trustDomain,
        publicKey: key.publicKey,
        spkiDer: key.spkiDer,
        privateKeyPem: key.privateKeyPem,
        keyType: this.#keyType,
        now,
        ...(expectedId === undefined ? {} : { expectedId }),
      });
    } catch (error) {
      if (error instanceof MeshauthError && error.reason === 'not_yet_valid') {
        this.#logger.warn(
          { localTime: now.toISOString(), code: error.code },
          'clock skew suspected: the CA issued an SVID that is not yet valid by our clock',
        );
      }
      throw error;
    }
  }

  /**
   * `anchors`: the roots a bootstrap trusted to reach the CA. Judged against the CA's bundle as a held bundle is, so
   * that an agent restarted over a `ca.bundle` file that still lists a retired root (its memory of retired roots is
   * gone with the old process, and the CA's answers never list that root again) keeps it out from then on.
   */
  #install(credentials: Credentials, mode: Mode, anchors?: TrustBundle): void {
    const { holder, metrics } = this.#options;
    const now = this.#now();
    const previous = holder.current;
    try {
      holder.set(credentials);
    } catch (error) {
      // Something derived from the new SVID could not be built (or a listener refused it): the holder kept the
      // old credentials everywhere, so this is a failed rotation, retried like a failed CA request.
      this.#unapplied = credentials;
      this.#applyFailed(error, mode);
      return;
    }
    this.#unapplied = undefined;
    this.#bundleVersion += 1;
    const trusted = anchors === undefined ? previous?.bundle : mergeBundles(anchors, previous?.bundle);
    this.#noteDroppedRoots(trusted, credentials.bundle);
    if (anchors !== undefined) this.#warnRetiredInFile(anchors, previous?.bundle);
    this.#failures = 0;
    this.#bootstrapNext = false;
    this.#tokenWarned = false;
    this.#caSkewWarned = false;
    const { svid, bundle } = credentials;
    metrics.svidRotations.inc({ result: 'success' });
    metrics.recordSvid(svid);
    this.#logger.info(
      { mode, id: svid.id.toString(), serial: svid.serialNumber, notAfter: svid.notAfter.toISOString() },
      mode === 'bootstrap' ? 'SVID obtained' : 'SVID renewed',
    );
    if (previous !== undefined && !sameRoots(previous.bundle, bundle)) {
      this.#logger.info({ roots: bundle.roots.length }, 'trust bundle updated by the CA');
    }
    if (!this.#ready) {
      this.#ready = true;
      this.#settleReady();
    }
    const lifetime = { notBefore: svid.notBefore, notAfter: svid.notAfter, receivedAt: now };
    const delayMs = renewalDelay(lifetime, now, this.#random());
    this.#scheduleRotation(delayMs, now.getTime() + delayMs);
  }

  #applyFailed(error: unknown, mode: Mode): void {
    const { holder, metrics } = this.#options;
    this.#failures += 1;
    metrics.svidRotations.inc({ result: 'apply_failure' });
    holder.noteFailure(`the new SVID could not be applied: ${failureLine(error)}`);
    const remainingMs = holder.current?.svid.remainingMs(this.#now());
    const delayMs = retryDelay(
      this.#failures,
      remainingMs,
      {
        baseMs: this.#options.minBackoffMs ?? DEFAULTS.minBackoffMs,
        maxMs: this.#options.maxBackoffMs ?? DEFAULTS.maxBackoffMs,
      },
      this.#random(),
    );
    this.#logger.error(
      { mode, attempt: this.#failures, retryInMs: delayMs, err: error, cause: causeMessage(error) },
      'the new SVID could not be applied; keeping the current credentials and retrying',
    );
    this.#scheduleRotation(delayMs);
  }

  #onFailure(error: unknown, mode: Mode): void {
    const { holder, metrics, tokenFile } = this.#options;
    const now = this.#now();
    this.#failures += 1;
    metrics.svidRotations.inc({ result: 'failure' });
    const status = caStatusOf(error);
    const remainingMs = holder.current?.svid.remainingMs(now);
    const valid = remainingMs !== undefined && remainingMs > 0;
    // The CA refusing our still-valid SVID (e.g. its root left the bundle) is no reason to wait for expiry: the
    // bootstrap credential may still work. A failed bootstrap goes back to renewal while the SVID lasts.
    this.#bootstrapNext = mode === 'renewal' && (status === 401 || status === 403);
    const maxMs = this.#options.maxBackoffMs ?? DEFAULTS.maxBackoffMs;
    const backoffMs = retryDelay(
      this.#failures,
      remainingMs,
      { baseMs: this.#options.minBackoffMs ?? DEFAULTS.minBackoffMs, maxMs },
      this.#random(),
    );
    // An overloaded CA (429) or one shedding load (503) says when to come back; a valid SVID's remaining life
    // still caps the wait, so an agent never lets its SVID expire waiting for a busy CA.
    const retryAfterMs = status === 429 || status === 503 ? caRetryAfterMsOf(error) : undefined;
    const lifeCapMs = valid ? Math.max(backoffMs, remainingMs * REMAINING_LIFE_CAP) : maxMs;
    const delayMs =
      retryAfterMs === undefined
        ? backoffMs
        : retryAfterDelay(backoffMs, retryAfterMs, Math.min(maxMs, lifeCapMs), this.#random());
    const fields = {
      mode,
      attempt: this.#failures,
      retryInMs: delayMs,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      ...(remainingMs === undefined ? {} : { svidRemainingMs: remainingMs }),
      ...describeError(error),
      // The CA refusing a renewal is not an outage to wait out: say what brings the agent back.
      ...(mode === 'renewal' && status === 401 ? { hint: renewalRefusedHint(tokenFile) } : {}),
    };
    holder.noteFailure(failureLine(error));
    if (valid) this.#logger.warn(fields, `SVID ${mode} failed; keeping the current SVID and retrying`);
    else this.#logger.error(fields, `SVID ${mode} failed; no valid SVID, retrying`);
    // The CA back-dates its own certificate by a minute, like every SVID: one not yet valid by our clock means the
    // clocks are further apart than that, which "failed TLS authentication" alone does not tell.
    if (!this.#caSkewWarned && hasCauseCode(error, 'CERT_NOT_YET_VALID')) {
      this.#caSkewWarned = true;
      this.#logger.warn(
        { localTime: now.toISOString(), caUrl: this.#options.caUrl },
        "clock skew suspected: the CA's certificate is not yet valid by our clock",
      );
    }
    if (mode === 'bootstrap' && status === 401 && !this.#tokenWarned) {
      this.#tokenWarned = true;
      const after = holder.current === undefined ? 'nothing' : valid ? 'refused_renewal' : 'expiry';
      this.#logger.warn({ tokenFile }, bootstrapRefusedMessage(after));
    }
    this.#scheduleRotation(delayMs);
  }

  // --- trust bundle ---

  async #refreshBundle(signal: AbortSignal): Promise<void> {
    const { holder, trustDomain, metrics } = this.#options;
    const current = holder.current;
    // Before the first SVID (or after expiry) bootstrap brings the bundle with it.
    if (current === undefined || current.svid.remainingMs(this.#now()) <= 0) return;
    const version = this.#bundleVersion;
    try {
      const response = await fetchBundle(this.#connection((await this.#caAnchors(current.bundle)).toPem(), signal));
      if (this.#state !== 'running') return;
      const now = this.#now();
      this.#checkSkew(response.serverDate, now);
      this.#noteRefreshHint(response.refreshHintMs);
      const bundle = parseBundle(trustDomain, response.bundlePem);
      if (version !== this.#bundleVersion || sameRoots(current.bundle, bundle)) {
        metrics.bundleRefreshes.inc({ result: 'ok' });
        return;
      }
      await this.#checkBundleAnchorsCa(current.bundle, bundle, signal);
      const latest = holder.current;
      if (this.#state !== 'running') return;
      // A renewal installed a newer bundle meanwhile: this one was good, just late.
      if (version !== this.#bundleVersion || latest === undefined) {
        metrics.bundleRefreshes.inc({ result: 'ok' });
        return;
      }
      const stillTrusted = trustsSvid(bundle, latest, now);
      this.#bundleVersion += 1;
      holder.set({ svid: latest.svid, bundle });
      this.#noteDroppedRoots(latest.bundle, bundle);
      metrics.bundleRefreshes.inc({ result: 'ok' });
      if (stillTrusted) {
        this.#logger.info({ roots: bundle.roots.length }, 'trust bundle updated');
        return;
      }
      // Normal in a root rotation only after every SVID moved to the new root; ours has not: renew at once.
      this.#logger.warn(
        { roots: bundle.roots.length, id: latest.svid.id.toString() },
        'new trust bundle no longer trusts the root of our current SVID; renewing now',
      );
      this.#scheduleRotation(0);
    } catch (error) {
      if (this.#state !== 'running') return;
      if (error instanceof CredentialsApplyError) metrics.svidRotations.inc({ result: 'apply_failure' });
      metrics.bundleRefreshes.inc({ result: bundleRefreshResult(error) });
      this.#logger.warn(describeError(error), 'trust bundle refresh failed; keeping the current bundle');
    }
  }

  /**
   * A CA's own serving certificate chains to a root of the bundle it publishes (the CA checks that of itself). A
   * bundle that drops roots we hold and does not anchor the CA that sent it is refused: taking it would leave every
   * later renewal and refresh unable to authenticate the CA (the dropped root is never trusted again from the file),
   * and the data plane trusting only roots this CA is not under, until the SVID expires and, with a used join token,
   * for good. Checked by one more call to the CA anchored in `next` alone, only when roots are dropped (a retirement).
   */
  async #checkBundleAnchorsCa(held: TrustBundle, next: TrustBundle, signal: AbortSignal): Promise<void> {
    if (held.roots.every((root) => next.hasRoot(root))) return;
    try {
      await fetchBundle(this.#connection(next.toPem(), signal, { anchors: 'received' }));
    } catch (error) {
      // Only a chain that does not reach `next`: an unfit certificate or a handshake failure is no fault of the bundle.
      if (!caChainUntrusted(error)) throw error;
      throw new MeshauthError(
        'MESHAUTH_ERR_CA_RESPONSE_INVALID',
        'the CA sent a trust bundle without the root of its own certificate; keeping the roots held',
        { reason: 'bundle_without_ca_root', cause: error },
      );
    }
  }

  /**
   * Roots this bootstrap found retired that the agent never held, so came from the configured file (the anchors hold
   * no root already known as retired): a warn line, since the file goes on listing them to every agent that starts.
   */
  #warnRetiredInFile(anchors: TrustBundle, held: TrustBundle | undefined): void {
    const dropped = this.#droppedRoots;
    const retired = anchors.roots.filter((root) => dropped?.hasRoot(root) === true && held?.hasRoot(root) !== true);
    if (retired.length === 0) return;
    this.#logger.warn(
      { event: 'bundle_file_retired_root', bundleFile: this.#options.bundleFile, roots: retired.length },
      "the configured trust bundle lists a root the CA has retired; it is not trusted: replace it with the CA's bundle.pem",
    );
  }

  /**
   * A join token file that group or others may read hands this workload's identity to whoever reads it first (the
   * CA gives it to the first caller): warned about once, as ssh does for keys, but used. A service-account token is
   * left alone: the kubelet projects it 0644 by default, and it is bound to the pod and refreshed.
   */
  #checkTokenMode(token: string, mode: number): void {
    if (this.#tokenModeChecked) return;
    this.#tokenModeChecked = true;
    // A compact JWT has dots between its parts; a join token is base64url, which has none.
    if (token.includes('.') || (mode & 0o077) === 0) return;
    const { tokenFile, tokenSetting } = this.#options;
    this.#logger.warn(
      {
        event: 'token_file_readable',
        tokenFile,
        ...(tokenSetting === undefined ? {} : { setting: tokenSetting }),
        mode: `0${(mode & 0o777).toString(8).padStart(3, '0')}`,
      },
      'the join token file is readable by group or others: whoever reads it first can bootstrap as this workload; ' +
        'make it readable by its owner only (chmod 600)',
    );
  }

  #noteRefreshHint(hintMs: number | undefined): void {
    if (hintMs === undefined || hintMs === this.#bundleRefreshHintMs) return;
    this.#bundleRefreshHintMs = hintMs;
    const ownMs = this.#options.bundleRefreshMs ?? DEFAULTS.bundleRefreshMs;
    this.#logger.info(
      { event: 'bundle_refresh_interval', intervalMs: bundleRefreshInterval(ownMs, hintMs), hintMs },
      "trust bundle refresh follows the CA's spiffe_refresh_hint",
    );
  }

  // --- helpers ---

  /**
   * The roots a renewal or a bundle refresh trusts the CA's serving certificate by: the bundle we hold, plus the
   * configured bundle file as it is now. If the CA moved to a new root before we learned it (activated too soon),
   * the bundle we hold no longer reaches the CA, and an operator who updates the file lets us back in without a
   * restart. A file that cannot be read leaves the bundle we hold.
   */
  async #caAnchors(held: TrustBundle): Promise<TrustBundle> {
    const { bundleFile, bundleSetting, trustDomain } = this.#options;
    let configured: TrustBundle;
    try {
      configured = await readBundleFile(bundleFile, trustDomain, bundleSetting);
    } catch (error) {
      // Renewals go on with the bundle held, but the next bootstrap (a restart, a refused renewal) reads this file
      // alone and would fail on it: said at warn once, when the file stops reading, not at every renewal and refresh.
      const fields = { event: 'bundle_file_unreadable', bundleFile, ...describeError(error) };
      const message = 'configured trust bundle not read; using the bundle held (a bootstrap needs it)';
      if (this.#bundleFileUnreadable) this.#logger.debug(fields, message);
      else this.#logger.warn(fields, message);
      this.#bundleFileUnreadable = true;
      return held;
    }
    this.#bundleFileUnreadable = false;
    // The file may still list a root the CA has since retired: that one stays out.
    const dropped = this.#droppedRoots;
    const added = configured.roots.filter((root) => !held.hasRoot(root) && dropped?.hasRoot(root) !== true);
    return added.length === 0 ? held : new TrustBundle(trustDomain, [...held.roots, ...added]);
  }

  /**
   * Remembers the roots `previous` held and `next` (from the CA) no longer does, when that looks like a retirement:
   * a root older than one `next` keeps. A root newer than every root left is one a lagging replica (its Secret not
   * yet updated) has not heard of: not remembered, or the recovery through the file would be blocked. Forgets the
   * roots `next` holds again. Older means an earlier NotBefore, or the same second and learned by this agent first
   * (a rotation within one second, as in tests, leaves NotBefore equal).
   */
  #noteDroppedRoots(previous: TrustBundle | undefined, next: TrustBundle): void {
    let learned = this.#learned ?? new TrustBundle(next.trustDomain, []);
    for (const root of [...(previous?.roots ?? []), ...next.roots]) {
      if (!learned.hasRoot(root)) learned = new TrustBundle(next.trustDomain, [...learned.roots, root]);
    }
    const age = (root: x509.X509Certificate) => ({
      notBefore: root.notBefore.getTime(),
      learned: learned.indexOfRoot(root),
    });
    const newestKept = next.roots.map(age).reduce((a, b) => (isOlder(a, b) ? b : a));
    const gone = previous?.roots.filter((root) => !next.hasRoot(root) && isOlder(age(root), newestKept)) ?? [];
    const known = this.#droppedRoots?.roots ?? [];
    if (known.length > 0 || gone.length > 0) {
      const still = known.filter((root) => !next.hasRoot(root));
      const newlyGone = gone.filter((root) => this.#droppedRoots?.hasRoot(root) !== true);
      // The newest MAX_DROPPED_ROOTS: a CA that rotated more often than that within one process is not a CA's pace.
      const dropped = [...still, ...newlyGone].slice(-MAX_DROPPED_ROOTS);
      this.#droppedRoots = dropped.length === 0 ? undefined : new TrustBundle(next.trustDomain, dropped);
    }
    // Only roots held or remembered as dropped need an age.
    const remembered = this.#droppedRoots;
    this.#learned = new TrustBundle(
      next.trustDomain,
      learned.roots.filter((root) => next.hasRoot(root) || remembered?.hasRoot(root) === true),
    );
  }

  /**
   * `anchors`: `configured` (default) when bundlePem includes the roots of the configured file, which the refusal of
   * a CA that does not chain to them names (with its setting) as the thing to fix: the agent re-reads that file at
   * each call. `received` for a bundle just received from the CA, which no file holds.
   */
  #connection(
    bundlePem: string,
    signal: AbortSignal,
    options: {
      client?: { clientCertPem: string; clientKeyPem: string };
      anchors?: 'configured' | 'received';
    } = {},
  ): CaConnection {
    const { bundleFile, bundleSetting } = this.#options;
    const named =
      options.anchors === 'received' ? {} : { bundleFile, ...(bundleSetting === undefined ? {} : { bundleSetting }) };
    return {
      caUrl: this.#options.caUrl,
      trustDomain: this.#options.trustDomain,
      bundlePem,
      ...named,
      timeoutMs: this.#options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
      signal,
      ...options.client,
    };
  }

  #checkSkew(serverDate: Date | undefined, now: Date): void {
    if (serverDate === undefined) return;
    const skewMs = serverDate.getTime() - now.getTime();
    if (Math.abs(skewMs) > SKEW_WARN_MS) {
      this.#logger.warn(
        { skewMs, localTime: now.toISOString(), caTime: serverDate.toISOString() },
        'clock skew suspected between this workload and the CA',
      );
    }
  }
}

/** The CA could not be reached, or answered that it is busy (429, 503): nothing said about the SVID presented. */
function caOutOfReach(error: unknown): boolean {
  const status = caStatusOf(error);
  if (status === 429 || status === 503) return true;
  return (
    error instanceof MeshauthError && error.code === 'MESHAUTH_ERR_CA_UNAVAILABLE' && error.reason === 'unreachable'
  );
}

function mergeBundles(configured: TrustBundle, received: TrustBundle | undefined): TrustBundle {
  if (received === undefined) return configured;
  const extra = received.roots.filter((root) => !configured.hasRoot(root));
  return extra.length === 0 ? configured : new TrustBundle(configured.trustDomain, [...configured.roots, ...extra]);
}

function sameRoots(a: TrustBundle, b: TrustBundle): boolean {
  return a.roots.length === b.roots.length && b.roots.every((root) => a.hasRoot(root));
}

function trustsSvid(bundle: TrustBundle, credentials: Credentials, now: Date): boolean {
  try {
    const { svid } = credentials;
    validateX509SvidDer(svid.leafDer, svid.intermediates, bundle, now);
    return true;
  } catch {
    return false;
  }
}

/** Uniform in [0, 1) from the CSPRNG (lint: no Math.random). */
function randomFraction(): number {
  return randomInt(0, 1_000_000) / 1_000_000;
}

function bundleRefreshResult(error: unknown): string {
  if (error instanceof CredentialsApplyError) return 'apply_failure';
  const reason = error instanceof MeshauthError ? error.reason : undefined;
  return reason !== undefined && BUNDLE_REFRESH_FAILURES.has(reason) ? reason : 'error';
}

/** Whether `error` or one of its causes carries `code` (Node's TLS verification errors do, as the cause). */
function hasCauseCode(error: unknown, code: string): boolean {
  for (const e of causeChain(error)) {
    if ((e as { code?: unknown }).code === code) return true;
  }
  return false;
}

function causeMessage(error: unknown): string | undefined {
  const cause = error instanceof Error ? error.cause : undefined;
  return cause instanceof Error ? cause.message : cause === undefined ? undefined : String(cause);
}

/** One line for /readyz: the error's code and message (no stack, no detail fields, no cause chain). */
function failureLine(error: unknown): string {
  const text = errorMessage(error).replace(/\s+/g, ' ').trim();
  return error instanceof MeshauthError ? `${error.code}: ${text}` : text;
}

function describeError(error: unknown): Record<string, unknown> {
  if (error instanceof MeshauthError) {
    return { code: error.code, reason: error.reason, error: error.message, ...(error.detail ?? {}) };
  }
  return { error: errorMessage(error) };
}

function isOlder(a: { notBefore: number; learned: number }, b: { notBefore: number; learned: number }): boolean {
  return a.notBefore < b.notBefore || (a.notBefore === b.notBefore && a.learned < b.learned);
}

/** The CA's answer to a renewal with the SVID alone when it renews only with a service-account token. */
function renewalNeedsToken(error: unknown): boolean {
  return error instanceof MeshauthError && error.code === 'MESHAUTH_ERR_CA_RENEWAL_TOKEN_REQUIRED';
}
