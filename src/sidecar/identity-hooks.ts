// Builds the sidecar's identity hooks from its config: the policy (PolicyWatcher → Authorize), end-user
// authentication (EndUserVerifier + passports → AuthenticateEndUser), passport wrapping on the way out, and the
// external listener's hooks (bearer token → origin passport in the same PassportStore; the same policy).
// Owns their lifecycles: an invalid policy file at start-up fails the start (fail closed); close() stops watching.
import type { CredentialHolder } from '../agent/index.js';
import type { EndUserVerifier } from '../authn/end-user-verifier.js';
import { type CompiledPolicy, PolicyWatcher } from '../authz/index.js';
import { configKeyName, namedByConfig, type SidecarConfig } from '../config/index.js';
import { MeshauthError } from '../errors/index.js';
import type { Logger, Metrics } from '../telemetry/index.js';
import { endUserAuthenticator } from './inbound/end-user-authenticator.js';
import { externalAuthenticator } from './inbound/external-authenticator.js';
import type { ExternalHooks } from './inbound/external-hooks.js';
import type { InboundHooks } from './inbound/inbound-hooks.js';
import { policyAuthorizer } from './inbound/policy-authorizer.js';
import type { OnOutboundRequest } from './outbound/outbound-hooks.js';
import { passportWrapper } from './outbound/passport-wrapper.js';
import { PassportStore } from './passport-store.js';
import { assertTcpPolicy } from './tcp/index.js';

export interface IdentityHooks {
  readonly hooks: InboundHooks & { readonly onOutboundRequest?: OnOutboundRequest };
  /** Set when `inbound.external` is configured. */
  readonly external: ExternalHooks | undefined;
  /** The current policy (the watcher swaps it on reload); undefined without `inbound.policy`. */
  readonly policy: (() => CompiledPolicy) | undefined;
  close(): Promise<void>;
}

export async function startIdentityHooks(
  config: SidecarConfig,
  holder: CredentialHolder,
  deps: {
    readonly logger: Logger;
    readonly metrics: Metrics;
    readonly now: () => Date;
    /** Called after a reloaded policy was applied (TCP tunnels, authorized once, are asked again). */
    readonly onPolicyChange?: (() => void) | undefined;
  },
): Promise<IdentityHooks> {
  const { logger, metrics, now } = deps;
  if (config.inbound.external !== undefined && config.inbound.endUser === undefined) {
    // The schema refuses this; a config built another way must not open a listener nobody can authenticate on.
    throw new MeshauthError('MESHAUTH_ERR_CONFIG_INVALID', 'inbound.external: requires inbound.endUser', {
      reason: 'config_invalid',
    });
  }
  const store = new PassportStore();
  let watcher: PolicyWatcher | undefined;
  let verifier: EndUserVerifier | undefined;
  let external: ExternalHooks | undefined;
  let authorize: ReturnType<typeof policyAuthorizer> | undefined;
  const hooks: { -readonly [K in keyof IdentityHooks['hooks']]: IdentityHooks['hooks'][K] } = {
    onOutboundRequest: passportWrapper({ holder, store, metrics, now }),
  };
  if (config.inbound.policy !== undefined) {
    const tcpApp = config.inbound.tcp?.app;
    watcher = new PolicyWatcher({
      file: config.inbound.policy,
      logger: logger.child({ component: 'policy' }),
      metrics,
      // A rule that could match a tunnel but needs HTTP (path, method, user, headers) fails the start, naming the
      // rule; a reload with one is refused and the previous policy stays.
      check: tcpApp === undefined ? undefined : (policy, file) => assertTcpPolicy(policy, tcpApp.port, file),
      // The sidecar accepts peers of its own trust domain only, so a rule on another one's IDs never holds (an allow
      // never matches; a notIds entry spares nobody): refused at start and on reload like any invalid policy.
      trustDomain: config.trustDomain.name,
      onChange: deps.onPolicyChange,
    });
    try {
      await watcher.start();
    } catch (error) {
      // A missing policy file is named with the config key that named it; an invalid one names its own file.
      throw namedByConfig(error, configKeyName(config.source, 'inbound.policy', config.variables), [
        'MESHAUTH_ERR_FILE_UNREADABLE',
      ]);
    }
    const current = watcher;
    authorize = policyAuthorizer({
      policy: () => current.current(),
      logger: logger.child({ component: 'authz' }),
      now,
    });
    hooks.authorize = authorize;
  }
  const endUser = config.inbound.endUser;
  if (endUser !== undefined) {
    // jose and the JWKS cache load only when end-user authentication is configured (an idle sidecar stays small).
    const { EndUserVerifier } = await import('../authn/end-user-verifier.js');
    verifier = new EndUserVerifier({
      config: {
        required: endUser.required,
        issuers: endUser.issuers,
        vouchers: endUser.vouchers,
        claims: endUser.claims,
      },
      origin: { source: config.source, ...variableOf(config, 'inbound.endUser') },
      tunables: { maxTokenLifetimeSeconds: endUser.maxTokenLifetimeSeconds },
      logger: logger.child({ component: 'authn' }),
      metrics,
      now: () => now().getTime(),
    });
    verifier.start();
    hooks.authenticateEndUser = endUserAuthenticator({
      settings: endUser,
      verifier,
      holder,
      store,
      metrics,
      now,
    });
    if (config.inbound.external !== undefined) {
      external = {
        authenticate: externalAuthenticator({ settings: endUser, verifier, holder, store, metrics, now }),
        ...(authorize === undefined ? {} : { authorize }),
      };
    }
  }
  const policyWatcher = watcher;
  return {
    hooks,
    external,
    policy: policyWatcher === undefined ? undefined : () => policyWatcher.current(),
    close: async () => {
      watcher?.close();
      await verifier?.close();
    },
  };
}

/** `{ variable }` when a MESHAUTH_* variable set `key` over the config file (messages name it), else nothing. */
function variableOf(config: SidecarConfig, key: string): { variable?: string } {
  const variable = config.variables.get(key);
  return variable === undefined ? {} : { variable };
}
