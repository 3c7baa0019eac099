// The agent of a sidecar or gateway config: both files name the CA with the same keys (`trustDomain`, `ca.url`,
// `ca.bundle`, `ca.token`), and the agent's log lines name those keys with the files they point at.
import type { TrustDomain } from '../identity/index.js';
import type { Logger, Metrics } from '../telemetry/index.js';
import { Agent } from './agent.js';
import type { CredentialHolder } from './credential-holder.js';

/** The part of a sidecar or gateway config the agent reads. */
export interface AgentSettings {
  readonly trustDomain: TrustDomain;
  readonly ca: { readonly url: string; readonly bundle: string; readonly token: string };
}

export interface ConfiguredAgentDependencies {
  readonly holder: CredentialHolder;
  /** The agent logs under its own `component: agent` child of this logger. */
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly now?: () => Date;
}

export function agentForConfig(settings: AgentSettings, deps: ConfiguredAgentDependencies): Agent {
  return new Agent({
    trustDomain: settings.trustDomain,
    caUrl: settings.ca.url,
    bundleFile: settings.ca.bundle,
    bundleSetting: 'ca.bundle',
    tokenFile: settings.ca.token,
    tokenSetting: 'ca.token',
    holder: deps.holder,
    logger: deps.logger.child({ component: 'agent' }),
    metrics: deps.metrics,
    ...(deps.now === undefined ? {} : { now: deps.now }),
  });
}
