// The one client SecureContext of a workload, shared by every outbound connector (h2 sessions, HTTP/1.1 pools, TCP
// tunnels): built once per SVID as a credential preparer, so a context that cannot be built refuses the rotation
// (the holder keeps the old credentials) instead of leaving some connectors on the old SVID and some broken.
import type { SecureContext } from 'node:tls';
import type { CredentialHolder, Credentials } from '../agent/credential-holder.js';
import { clientSecureContext, type TlsProfile } from './tls-profile.js';

export interface ClientContext {
  readonly credentials: Credentials;
  readonly secureContext: SecureContext;
}

export class ClientTlsContext {
  #current: ClientContext | undefined;
  readonly #listeners = new Set<(context: ClientContext) => void>();
  readonly #unregister: () => void;

  constructor(holder: CredentialHolder, profile: TlsProfile) {
    this.#unregister = holder.prepare((credentials) => {
      const next: ClientContext = { credentials, secureContext: clientSecureContext(profile, credentials) };
      return () => {
        this.#current = next;
        for (const listener of this.#listeners) listener(next);
      };
    });
  }

  /** The context of the current credentials; undefined before the first SVID. */
  get current(): ClientContext | undefined {
    return this.#current;
  }

  /** Called after each switch (connectors retire their connections made with the previous context). */
  onChange(listener: (context: ClientContext) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  close(): void {
    this.#unregister();
    this.#listeners.clear();
  }
}
