// CredentialHolder: the workload's current SVID and trust bundle, swapped atomically as one value (STYLE 3).
// The agent writes it (bootstrap, rotation, bundle refresh); the TLS listeners and the outbound connector read it
// and subscribe to changes to rebuild their secure contexts. A failed renewal never touches it.
import type { TrustBundle, X509Svid } from '../pki/index.js';

export interface Credentials {
  readonly svid: X509Svid;
  readonly bundle: TrustBundle;
}

export type CredentialsListener = (credentials: Credentials) => void;

export class CredentialHolder {
  #current: Credentials | undefined;
  readonly #listeners = new Set<CredentialsListener>();

  constructor(initial?: Credentials) {
    this.#current = initial;
  }

  /** The current credentials, or undefined before the first SVID arrived. */
  get current(): Credentials | undefined {
    return this.#current;
  }

  /** Replaces the credentials and tells every subscriber, in subscription order. */
  set(credentials: Credentials): void {
    this.#current = credentials;
    for (const listener of this.#listeners) listener(credentials);
  }

  /** Calls `listener` on every change; returns the unsubscribe function. */
  subscribe(listener: CredentialsListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** True when there is an SVID valid at `now`. */
  isValid(now: Date): boolean {
    const svid = this.#current?.svid;
    return svid !== undefined && svid.notBefore <= now && now < svid.notAfter;
  }
}
