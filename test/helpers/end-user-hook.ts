// What a sidecar's end-user hooks (endUserAuthenticator on the mTLS inbound, externalAuthenticator on the external
// listener) are built from in unit tests: `settings`, a verifier of them, the sidecar's SVID in a holder, a fresh
// passport store and metrics, the real clock. The verifier is closed once `use` is done.
import { CredentialHolder } from '../../src/agent/credential-holder.js';
import { EndUserVerifier } from '../../src/authn/end-user-verifier.js';
import type { EndUserSettings } from '../../src/config/index.js';
import type { EndUserAuthenticatorOptions } from '../../src/sidecar/inbound/end-user-authenticator.js';
import { PassportStore } from '../../src/sidecar/passport-store.js';
import { Metrics } from '../../src/telemetry/index.js';
import type { TestCa, TestSvid } from './test-ca.js';

export async function withEndUserHookOptions<T>(
  ca: TestCa,
  svid: TestSvid,
  settings: EndUserSettings,
  use: (options: EndUserAuthenticatorOptions) => T | Promise<T>,
): Promise<T> {
  const verifier = new EndUserVerifier({ config: settings });
  try {
    return await use({
      settings,
      verifier,
      holder: new CredentialHolder({ svid: svid.svid, bundle: ca.bundle }),
      store: new PassportStore(),
      metrics: new Metrics(),
      now: () => new Date(),
    });
  } finally {
    await verifier.close();
  }
}
