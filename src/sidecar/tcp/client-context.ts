// The outbound TLS client context of TCP tunnels: one SecureContext per credential rotation (chain, key and bundle
// parsed once), so every tunnel reuses it; after a rotation new tunnels use the new one while established tunnels
// keep the connection they have (nothing is cut).
import type { SecureContext } from 'node:tls';
import type { CredentialHolder, Credentials } from '../../agent/credential-holder.js';
import { clientSecureContext, type TlsProfile } from '../../tls/index.js';

export class ClientContextCache {
  readonly #holder: CredentialHolder;
  readonly #profile: TlsProfile;
  #cached: { readonly credentials: Credentials; readonly context: SecureContext } | undefined;

  constructor(holder: CredentialHolder, profile: TlsProfile) {
    this.#holder = holder;
    this.#profile = profile;
  }

  /** The context for the current credentials, or undefined before the first SVID. */
  current(): SecureContext | undefined {
    const credentials = this.#holder.current;
    if (credentials === undefined) return undefined;
    if (this.#cached?.credentials !== credentials) {
      this.#cached = { credentials, context: clientSecureContext(this.#profile, credentials) };
    }
    return this.#cached.context;
  }
}
