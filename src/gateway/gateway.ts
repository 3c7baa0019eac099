// The gateway composition root: the only place that starts the gateway's listeners. It joins the mesh like a
// sidecar (an Agent bootstraps and renews its SVID into a CredentialHolder, or tests inject one), builds the
// relying party, the API token verifier and the policy watcher from the config, and owns the shutdown order
// (readiness off → stop accepting → drain → close).
import { agentForConfig } from '../agent/configured-agent.js';
import { CredentialHolder } from '../agent/credential-holder.js';
import type { EndUserVerifier } from '../authn/end-user-verifier.js';
import type { CompiledPolicy } from '../authz/index.js';
import { PolicyWatcher } from '../authz/index.js';
import { configKeyName, namedByConfig } from '../config/index.js';
import { listenAll } from '../platform/listen-all.js';
import { AdminServer } from '../telemetry/admin-server.js';
import type { Logger, Metrics } from '../telemetry/index.js';
import { CloseStack } from './close-stack.js';
import { EdgeHandler, type EdgeRequest, type EdgeResponseSink } from './edge-handler.js';
import { EdgeRequestTelemetry } from './edge-request-telemetry.js';
import { type GatewayConfig, reservedCookieTest } from './gateway-config.js';
import { JwtSvidVerifier } from './jwt-svid-verifier.js';
import { MeshForwarder } from './mesh-forwarder.js';
import { OidcRelyingParty } from './oidc-relying-party.js';
import { PublicListener } from './public-listener.js';
import { loadKeyRing, type SessionKeyRing } from './session-keys.js';

export interface GatewayDependencies {
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Pre-filled credentials: when given, no agent is started (tests). */
  readonly holder?: CredentialHolder;
  readonly now?: () => Date;
  readonly certWatchIntervalMs?: number;
}

export interface RunningGateway {
  readonly port: number;
  readonly adminPort: number;
  readonly holder: CredentialHolder;
  ready(): boolean;
  /** Re-reads the server certificate now (also done on file change). */
  reloadCertificate(): boolean;
  close(drainMs?: number): Promise<void>;
}

export async function startGateway(config: GatewayConfig, deps: GatewayDependencies): Promise<RunningGateway> {
  const { logger, metrics } = deps;
  const now = deps.now ?? (() => new Date());
  const holder = deps.holder ?? new CredentialHolder();
  const keyRing: SessionKeyRing | undefined =
    config.session.keys.length === 0 ? undefined : loadKeyRing(config.session.keys, config.source);
  // Files the config names are read here, at start; their messages name the key, the config file leads them.
  const fromConfig = <T>(read: () => T): T => {
    try {
      return read();
    } catch (error) {
      throw namedByConfig(error, config.source, ['MESHAUTH_ERR_FILE_UNREADABLE', 'MESHAUTH_ERR_CONFIG_INVALID']);
    }
  };
  // Every part the start sets going is pushed here as it starts; a start that fails part-way and close() unwind this
  // one stack, newest first. A policy refused at start used to leave the JWKS refresh timers and the dispatchers of
  // the verifiers behind in the calling process, and a part that failed to close in close() kept the rest open.
  const parts = new CloseStack();
  const step = async <T>(run: () => T | Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (error) {
      // The start's own error is the one reported; a part that also fails to close cannot hide it.
      await parts.unwind(Date.now());
      throw error;
    }
  };
  let draining = false;
  // /readyz names what is missing, as the sidecar's does.
  const unmet = (): string[] => (draining ? ['draining (shutting down)'] : holder.unmet(now()));
  // Pushed first so closed last: /readyz answers "draining" while the listener drains, and the SVID stays renewed
  // for the requests still in flight.
  const admin = new AdminServer({
    host: config.admin.listen.host,
    port: config.admin.listen.port,
    metrics,
    logger: logger.child({ component: 'admin' }),
    readiness: unmet,
    // Named as /readyz names it: "no valid SVID yet" hid an SVID under a root the CA retired.
    startup: () => holder.unmet(now()),
  });
  parts.push(() => admin.close());
  const agent = deps.holder === undefined ? agentForConfig(config, { holder, logger, metrics, now }) : undefined;
  if (agent !== undefined) parts.push(() => agent.close());
  metrics.exposeSvidExpiry();
  parts.push(
    holder.subscribe((credentials) => {
      metrics.recordSvid(credentials.svid);
    }),
  );
  const oidc = config.oidc;
  const relyingParty =
    oidc === undefined
      ? undefined
      : await step(() => fromConfig(() => new OidcRelyingParty(oidc, logger.child({ component: 'oidc' }))));
  if (relyingParty !== undefined) parts.push(() => relyingParty.close());
  let apiVerifier: EndUserVerifier | undefined;
  if (config.apiIssuers.length > 0) {
    const { EndUserVerifier } = await import('../authn/end-user-verifier.js');
    const verifier = await step(
      () =>
        new EndUserVerifier({
          config: {
            required: false,
            issuers: config.apiIssuers,
            vouchers: [],
            claims: [...new Set(config.apiIssuers.flatMap((a) => a.claims))],
          },
          origin: { source: config.source, issuersKey: 'apiIssuers', claimsKey: 'apiIssuers[].claims' },
          tunables: { maxTokenLifetimeSeconds: config.limits.maxTokenLifetimeSeconds },
          logger: logger.child({ component: 'authn' }),
          metrics,
          now: () => now().getTime(),
        }),
    );
    verifier.start();
    parts.push(() => verifier.close());
    apiVerifier = verifier;
  }
  const jwtSvids = config.jwtSvids;
  const jwtSvidVerifier =
    jwtSvids === undefined
      ? undefined
      : await step(() =>
          fromConfig(
            () =>
              new JwtSvidVerifier({
                settings: jwtSvids,
                caUrl: config.ca.url,
                bundleFile: config.ca.bundle,
                trustDomain: config.trustDomain,
                logger: logger.child({ component: 'authn' }),
                metrics,
              }),
          ),
        );
  if (jwtSvidVerifier !== undefined) parts.push(() => jwtSvidVerifier.close());
  let watcher: PolicyWatcher | undefined;
  if (config.policy !== undefined) {
    watcher = new PolicyWatcher({
      file: config.policy,
      logger: logger.child({ component: 'policy' }),
      metrics,
      // Refused as the sidecars refuse it (the language and often the file are shared): the mesh has one trust
      // domain, so a rule on another one's IDs can never hold and only hides a mistake.
      trustDomain: config.trustDomain.name,
    });
    // An invalid policy at start-up fails the start (fail closed); a missing one is named by the key that named it.
    const policyWatcher = watcher;
    parts.push(() => policyWatcher.close());
    await step(async () => {
      try {
        await policyWatcher.start();
      } catch (error) {
        throw namedByConfig(error, configKeyName(config.source, 'policy'), ['MESHAUTH_ERR_FILE_UNREADABLE']);
      }
    });
  }
  const current = watcher;
  const forwarder = new MeshForwarder({
    config,
    holder,
    metrics,
    logger: logger.child({ component: 'gateway-outbound' }),
    now,
    reservedCookie: reservedCookieTest(config),
  });
  parts.push((deadline) => forwarder.close(deadline));
  let publicListener: PublicListener | undefined;
  const requests = new EdgeRequestTelemetry(metrics);
  const edge = new EdgeHandler({
    requests,
    config,
    forwarder,
    metrics,
    logger: logger.child({ component: 'edge' }),
    now,
    ...(keyRing === undefined ? {} : { keyRing: () => keyRing }),
    ...(relyingParty === undefined ? {} : { relyingParty }),
    ...(apiVerifier === undefined ? {} : { apiVerifier }),
    ...(jwtSvidVerifier === undefined ? {} : { jwtSvidVerifier }),
    ...(current === undefined ? {} : { policy: (): CompiledPolicy => current.current() }),
    port: () => publicListener?.port ?? 0,
  });
  publicListener = await step(() =>
    fromConfig(
      () =>
        new PublicListener({
          listen: config.listen,
          certFile: config.tls.cert,
          keyFile: config.tls.key,
          maxHeaderBytes: config.limits.maxHeaderBytes,
          logger: logger.child({ component: 'public' }),
          metrics,
          requests,
          ...(deps.certWatchIntervalMs === undefined ? {} : { watchIntervalMs: deps.certWatchIntervalMs }),
          onRequest: (req, res) => edge.handle(req as unknown as EdgeRequest, res as unknown as EdgeResponseSink),
        }),
    ),
  );
  const listener = publicListener;
  // Pushed last so closed first: no new request is accepted, and those in flight finish by the deadline.
  parts.push((deadline) => listener.close(deadline));
  const ready = (): boolean => !draining && holder.isValid(now());

  let closing: Promise<void> | undefined;
  const close = (drainMs = config.drainTimeoutMs): Promise<void> => {
    closing ??= (async () => {
      draining = true;
      const failures = await parts.unwind(Date.now() + drainMs);
      for (const error of failures) logger.warn({ err: (error as Error)?.message }, 'gateway part failed to close');
      logger.info('gateway stopped');
      if (failures.length > 0) throw failures[0];
    })();
    return closing;
  };
  // Both binds settle before a refused one unwinds the start (listen-all.ts): no part is closed mid-bind.
  const [port, adminPort] = await step(() => listenAll([listener.listen(), admin.listen()]));
  agent?.start();
  logger.info({ public: port, admin: adminPort, routes: config.routes.map((r) => r.name) }, 'gateway listening');
  return { port, adminPort, holder, ready, reloadCertificate: () => listener.reload(), close };
}
