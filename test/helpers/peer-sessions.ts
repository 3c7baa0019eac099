// The outbound PeerSessions of a sidecar `front/web` (its SVID from the test's CA) over a config, for tests of
// endpoint sets without a running sidecar; and a route of that config by its name.
import { CredentialHolder } from '../../src/agent/credential-holder.js';
import type { RouteConfig, SidecarConfig } from '../../src/config/index.js';
import { PeerSessions, type PeerSessionsOptions } from '../../src/sidecar/outbound/peer-sessions.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import type { TestCa } from './test-ca.js';

/** `options` replaces the silent logger or adds a shorter idle sweep. */
export async function peerSessionsOf(
  ca: TestCa,
  config: SidecarConfig,
  options: Partial<Pick<PeerSessionsOptions, 'logger' | 'sweep'>> = {},
): Promise<PeerSessions> {
  const svid = await ca.issue({ id: 'spiffe://example.org/ns/front/sa/web' });
  return new PeerSessions({
    config,
    holder: new CredentialHolder({ svid: svid.svid, bundle: ca.bundle }),
    metrics: new Metrics(),
    logger: silentLogger(),
    ...options,
  });
}

export function routeOf(config: SidecarConfig, name: string): RouteConfig {
  const route = config.outbound.routes.get(name);
  if (route === undefined) throw new Error(`no route ${name}`);
  return route;
}
