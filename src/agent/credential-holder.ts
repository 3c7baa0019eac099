// CredentialHolder: the workload's current SVID and trust bundle, swapped atomically as one value.
// The agent writes it (bootstrap, rotation, bundle refresh); the TLS listeners and the outbound connector read it.
// A change is applied in two phases so that every side switches or none does: first every preparer builds what it
// derives from the new credentials (secure contexts, the passport signer) without touching live state, then the
// subscribers apply, then the value and every prepared result switch together. A preparer that throws, or a
// subscriber that throws (the ones before it are re-applied with the old credentials), leaves the old credentials
// in force and makes set() throw CredentialsApplyError. A failed renewal never touches the holder at all.
import type { TrustBundle, X509Svid } from '../pki/index.js';
import { svidChainsToBundle } from './svid-anchor.js';

/**
 * What whyInvalid says of an SVID whose root the bundle dropped: the agent installs a bundle from the CA even when it
 * no longer holds our SVID's root (a forced root retirement), so the SVID is in date but peers and the CA refuse it.
 */
export const SVID_ROOT_NOT_IN_BUNDLE =
  'SVID issued under a root the trust bundle no longer holds (retired by the CA): peers and the CA refuse it until a new bootstrap';

export interface Credentials {
  readonly svid: X509Svid;
  readonly bundle: TrustBundle;
}

export type CredentialsListener = (credentials: Credentials) => void;

/**
 * Builds everything derived from `next` without changing live state; returns the commit step, which must not
 * throw (an assignment). Throwing refuses the new credentials.
 */
export type CredentialsPreparer = (next: Credentials) => () => void;

/** New credentials could not be applied; the holder still holds (and serves) the previous ones. */
export class CredentialsApplyError extends Error {
  override readonly name = 'CredentialsApplyError';
  readonly code = 'MESHAUTH_CREDENTIALS_APPLY_FAILED';
}

/** The longest failure line /readyz repeats: a code and a message, not a stack or a CA's whole answer. */
const MAX_FAILURE_TEXT = 200;

export class CredentialHolder {
  #current: Credentials | undefined;
  /** Whether #current's SVID chains to #current's bundle: decided once per credentials, not per /readyz. */
  #anchored: { readonly of: Credentials; readonly chains: boolean } | undefined;
  readonly #preparers = new Set<CredentialsPreparer>();
  readonly #listeners = new Set<CredentialsListener>();
  /** Why the last attempt to get a first SVID failed (noteFailure): /readyz says so beside "no SVID yet". */
  #lastFailure: string | undefined;

  constructor(initial?: Credentials) {
    this.#current = initial;
  }

  /** The current credentials, or undefined before the first SVID arrived. */
  get current(): Credentials | undefined {
    return this.#current;
  }

  /**
   * Replaces the credentials: prepare everything, apply the subscribers in subscription order, then switch.
   * Throws CredentialsApplyError (old credentials kept) when a preparer or a subscriber throws.
   */
  set(credentials: Credentials): void {
    const commits: (() => void)[] = [];
    for (const prepare of this.#preparers) {
      try {
        commits.push(prepare(credentials));
      } catch (cause) {
        throw new CredentialsApplyError('preparing the new credentials failed', { cause });
      }
    }
    const applied: CredentialsListener[] = [];
    for (const listener of this.#listeners) {
      try {
        listener(credentials);
        applied.push(listener);
      } catch (cause) {
        this.#rollBack(applied);
        throw new CredentialsApplyError('a subscriber failed to apply the new credentials', { cause });
      }
    }
    this.#current = credentials;
    this.#lastFailure = undefined;
    for (const commit of commits) commit();
  }

  /**
   * Why the agent's last attempt failed, in one short line (a code and its message); shown by whyInvalid while no
   * SVID is held, so whoever asks /readyz by hand learns the cause (a missing token file, a CA that refuses or is
   * down) without the logs. Cleared by the next SVID.
   */
  noteFailure(reason: string): void {
    this.#lastFailure = reason.length > MAX_FAILURE_TEXT ? `${reason.slice(0, MAX_FAILURE_TEXT - 1)}…` : reason;
  }

  /** Calls `listener` on every change (it may throw to refuse it); returns the unsubscribe function. */
  subscribe(listener: CredentialsListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Registers a two-phase preparer (see CredentialsPreparer). When credentials are already held, it is prepared
   * and committed for them right away, so its owner never sees a state without them.
   */
  prepare(preparer: CredentialsPreparer): () => void {
    if (this.#current !== undefined) preparer(this.#current)();
    this.#preparers.add(preparer);
    return () => this.#preparers.delete(preparer);
  }

  /** True when there is an SVID valid at `now` that chains to a root of the bundle held with it. */
  isValid(now: Date): boolean {
    return this.whyInvalid(now) === undefined;
  }

  /**
   * Why there is no usable SVID at `now`, in the words /readyz answers with; undefined when there is one. Usable: in
   * date, and issued under a root of the bundle held with it (peers trust by the same roots, and so does the CA).
   */
  whyInvalid(now: Date): string | undefined {
    const current = this.#current;
    if (current === undefined) {
      return this.#lastFailure === undefined ? 'no SVID yet' : `no SVID yet (last attempt: ${this.#lastFailure})`;
    }
    const { svid } = current;
    if (now < svid.notBefore) return `SVID not valid before ${svid.notBefore.toISOString()}`;
    if (now >= svid.notAfter) return `SVID expired at ${svid.notAfter.toISOString()}`;
    return this.#chainsToBundle(current) ? undefined : SVID_ROOT_NOT_IN_BUNDLE;
  }

  /** whyInvalid as the list /readyz and /startupz answer with: empty when the SVID is usable. */
  unmet(now: Date): string[] {
    const problem = this.whyInvalid(now);
    return problem === undefined ? [] : [problem];
  }

  /** Asked on every probe, decided once per credentials: a few signature checks, then a lookup. */
  #chainsToBundle(current: Credentials): boolean {
    if (this.#anchored?.of !== current) {
      this.#anchored = { of: current, chains: svidChainsToBundle(current.svid, current.bundle) };
    }
    return this.#anchored.chains;
  }

  /** Puts the listeners that already applied the refused credentials back on the current ones (best effort). */
  #rollBack(applied: readonly CredentialsListener[]): void {
    const previous = this.#current;
    if (previous === undefined) return;
    for (const listener of applied) {
      try {
        listener(previous);
      } catch {
        // It accepted these credentials before; a second failure leaves it as the failed apply did.
      }
    }
  }
}
