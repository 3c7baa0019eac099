// The sidecar composition root: the only place that starts the sidecar's listeners. It wires the
// credential holder (fed by the certificate agent, or injected by tests), the inbound PEP, the optional external
// listener, the outbound proxy and the admin server, and owns the shutdown order (readiness off → stop
// accepting → drain → close pools).
import { agentForConfig } from '../agent/configured-agent.js';
import { CredentialHolder } from '../agent/credential-holder.js';
import type { CompiledPolicy } from '../authz/index.js';
import { configKeyName, type SidecarConfig } from '../config/index.js';
import { listenAll } from '../platform/listen-all.js';
import { AdminServer } from '../telemetry/admin-server.js';
import type { Logger, Metrics } from '../telemetry/index.js';
import { AppProbe } from './app-probe.js';
import { AddressResolver } from './endpoints/dns-resolver.js';
import { startIdentityHooks } from './identity-hooks.js';
import { loadExternalCertificate } from './inbound/external-certificate.js';
import { ExternalListener } from './inbound/external-listener.js';
import { openFileLimit } from './inbound/fd-budget.js';
import type { InboundHooks } from './inbound/inbound-hooks.js';
import { type InboundLimits, InboundListener } from './inbound/inbound-listener.js';
import { listeningAddresses } from './listening-addresses.js';
import { outboundConnectionCap } from './outbound/outbound-connection-cap.js';
import type { OnOutboundRequest } from './outbound/outbound-hooks.js';
import { OutboundListener } from './outbound/outbound-listener.js';
import {
  resolveHostWith,
  TCP_ALPNS,
  TCP_LIMITS,
  TcpInboundHandler,
  type TcpLimits,
  TcpOutboundListeners,
} from './tcp/index.js';

/** What the sidecar needs of the certificate agent (src/agent/agent.ts). */
export interface SidecarAgent {
  start(): void;
  whenReady(): Promise<void>;
  close(): Promise<void>;
}

export interface SidecarDependencies {
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Pre-filled credentials: when given, no agent is started (tests, static credentials). */
  readonly holder?: CredentialHolder;
  /** `false` starts no agent even without a holder (the sidecar then waits for someone to fill the holder). */
  readonly agent?: false;
  readonly hooks?: InboundHooks & { readonly onOutboundRequest?: OnOutboundRequest };
  readonly now?: () => Date;
  /** Inbound HTTP limits (tests shorten the slowloris timeouts). */
  readonly inboundLimits?: Partial<InboundLimits>;
  /** Limits of the TCP tunnels, mesh and egress alike (tests shorten the idle timeout). */
  readonly tcpLimits?: Partial<TcpLimits>;
}

export interface RunningSidecar {
  readonly inboundPort: number;
  readonly outboundPort: number;
  readonly adminPort: number;
  /** The external bearer-token listener's port, when `inbound.external` is configured. */
  readonly externalPort: number | undefined;
  /** `outbound.tcp` listen key → bound port (port 0 in the config picks a free one). */
  readonly tcpPorts: ReadonlyMap<string, number>;
  readonly holder: CredentialHolder;
  /** Holds a currently valid SVID and is not draining (the app probe is only part of /readyz). */
  ready(): boolean;
  /** What /readyz answers: ready() and the app accepts a TCP connection. */
  readiness(): Promise<boolean>;
  /** Drains for at most `drainMs` (default: config drainTimeout), then closes everything. Idempotent. */
  close(drainMs?: number): Promise<void>;
}

export async function startSidecar(config: SidecarConfig, deps: SidecarDependencies): Promise<RunningSidecar> {
  const { logger, metrics } = deps;
  metrics.peerIds.setMax(config.inbound.limits.maxPeerIdLabels);
  const now = deps.now ?? (() => new Date());
  const holder = deps.holder ?? new CredentialHolder();
  // Read before anything starts: a missing or mismatched certificate fails the start with nothing to undo.
  const externalSettings = config.inbound.external;
  const externalCertificate =
    externalSettings === undefined
      ? undefined
      : loadExternalCertificate(externalSettings, now(), (key) => configKeyName(config.source, key, config.variables));
  const agent = deps.holder === undefined && deps.agent !== false ? createAgent(config, holder, deps) : undefined;

  let tcpInbound: TcpInboundHandler | undefined;
  // A reloaded policy also applies to tunnels already open (they were authorized once, when they opened).
  const onPolicyChange = () => tcpInbound?.reauthorize();
  const identity = await startIdentityHooks(config, holder, { logger, metrics, now, onPolicyChange });
  const hooks = { ...identity.hooks, ...deps.hooks };

  try {
    tcpInbound = startTcpInbound(config, identity.policy, { logger, metrics, now, limits: deps.tcpLimits });
  } catch (error) {
    await identity.close(); // nothing else has started yet
    throw error;
  }
  const inbound = new InboundListener({
    config,
    holder,
    metrics,
    logger: logger.child({ component: 'inbound' }),
    hooks,
    ...(deps.inboundLimits === undefined ? {} : { limits: deps.inboundLimits }),
    ...(tcpInbound === undefined
      ? {}
      : { tcp: { alpns: TCP_ALPNS, adopt: (socket, peer) => tcpInbound?.adopt(socket, peer) } }),
    now,
  });
  const tcpOutbound =
    config.outbound.tcp.size === 0
      ? undefined
      : new TcpOutboundListeners({
          routes: config.outbound.tcp,
          trustDomain: config.trustDomain,
          holder,
          profile: { tls12: config.inbound.tls12 },
          metrics,
          logger: logger.child({ component: 'tcp' }),
          resolveHost: resolveHostWith(new AddressResolver(config.outbound.dns.servers, metrics)),
          limits: deps.tcpLimits,
          maxTotalConnections: tcpOutboundTotal(config, deps.tcpLimits, logger),
          now,
        });
  const external =
    externalSettings === undefined || externalCertificate === undefined || identity.external === undefined
      ? undefined
      : new ExternalListener({
          config,
          listen: externalSettings.listen,
          certificate: externalCertificate,
          hooks: identity.external,
          metrics,
          logger: logger.child({ component: 'external' }),
          ...(deps.inboundLimits === undefined ? {} : { limits: deps.inboundLimits }),
        });
  const outbound = new OutboundListener({
    config,
    holder,
    metrics,
    logger: logger.child({ component: 'outbound' }),
    ...(hooks.onOutboundRequest === undefined ? {} : { onOutboundRequest: hooks.onOutboundRequest }),
    tcpLimits: deps.tcpLimits,
    now,
  });
  const probeLogger = logger.child({ component: 'app-probe' });
  const probes = config.inbound.readinessApps.map((app) => new AppProbe(app, { logger: probeLogger }));
  let draining = false;
  const ready = (): boolean => !draining && holder.isValid(now());
  // Each unmet condition of /readyz in plain words: a bare "not ready" left the user guessing which one it was.
  const unmet = async (): Promise<string[]> => {
    // Draining is the whole answer: the app may already be going away, and that is no news.
    if (draining) return ['draining (shutting down)'];
    const reasons = holder.unmet(now());
    for (const [index, result] of (await Promise.all(probes.map((probe) => probe.check()))).entries()) {
      if (!result.ok) reasons.push(`app ${probes[index]?.address} not accepting connections (${result.code})`);
    }
    return reasons;
  };
  const readiness = async (): Promise<boolean> => (await unmet()).length === 0;
  const admin = new AdminServer({
    host: config.admin.listen.host,
    port: config.admin.listen.port,
    metrics,
    logger: logger.child({ component: 'admin' }),
    readiness: unmet,
    // What a native sidecar's startup probe asks: the app starts only after it passes, so it must not need the app.
    // The SVID's root must be in the bundle too: an SVID no peer trusts would start an app that cannot call anyone.
    // A bootstrap always brings an SVID and a bundle that agree, so this never holds back a normal start.
    startup: () => holder.unmet(now()),
    appProbes: config.admin.appProbes,
  });
  metrics.exposeSvidExpiry();
  const unsubscribe = holder.subscribe((credentials) => {
    metrics.recordSvid(credentials.svid);
  });
  if (holder.current !== undefined) metrics.recordSvid(holder.current.svid);

  let closing: Promise<void> | undefined;
  const close = (drainMs = config.drainTimeoutMs): Promise<void> => {
    closing ??= (async () => {
      draining = true; // /readyz answers 503 from now on
      const deadline = Date.now() + drainMs;
      logger.info({ drainMs }, 'sidecar draining');
      await Promise.all([
        inbound.close(deadline),
        outbound.close(deadline),
        external?.close(deadline),
        tcpInbound?.close(deadline),
        tcpOutbound?.close(deadline),
      ]);
      unsubscribe();
      await identity.close();
      await agent?.close();
      await admin.close();
      logger.info('sidecar stopped');
    })();
    return closing;
  };

  try {
    // Every bind settles before a refused one ends the start: none is closed mid-bind, and two taken addresses are
    // named in one error, not the second only after the first was freed.
    const [inboundPort, outboundPort, adminPort, externalPort, tcpPorts] = await listenAll([
      inbound.listen(),
      outbound.listen(),
      admin.listen(),
      external?.listen(),
      tcpOutbound?.listen(),
    ]);
    agent?.start();
    logger.info(
      {
        inbound: inboundPort,
        outbound: outboundPort,
        admin: adminPort,
        ...(externalPort === undefined
          ? {}
          : { external: externalPort, externalCertNotAfter: externalCertificate?.notAfter.toISOString() }),
        ...(tcpPorts === undefined ? {} : { tcp: Object.fromEntries(tcpPorts) }),
        // The ports alone did not say on which address each listener is (a wildcard or loopback bind).
        addresses: listeningAddresses(config, { inboundPort, outboundPort, adminPort, externalPort, tcpPorts }),
        trustDomain: config.trustDomain.name,
      },
      'sidecar listening',
    );
    return {
      inboundPort,
      outboundPort,
      adminPort,
      externalPort,
      tcpPorts: tcpPorts ?? new Map(),
      holder,
      ready,
      readiness,
      close,
    };
  } catch (error) {
    await close(0).catch(() => undefined);
    throw error;
  }
}

/**
 * The inbound end of TCP tunnels (`inbound.tcp`). The policy watcher already refuses a policy with a rule that could
 * match a tunnel but needs HTTP (identity-hooks.ts); the handler still denies tunnels if one ever got through.
 */
function startTcpInbound(
  config: SidecarConfig,
  policy: (() => CompiledPolicy) | undefined,
  deps: {
    readonly logger: Logger;
    readonly metrics: Metrics;
    readonly now: () => Date;
    readonly limits: Partial<TcpLimits> | undefined;
  },
): TcpInboundHandler | undefined {
  const tcp = config.inbound.tcp;
  if (tcp === undefined) return undefined;
  return new TcpInboundHandler({
    app: tcp.app,
    policy,
    metrics: deps.metrics,
    logger: deps.logger.child({ component: 'tcp' }),
    limits: deps.limits,
    now: deps.now,
  });
}

function createAgent(config: SidecarConfig, holder: CredentialHolder, deps: SidecarDependencies): SidecarAgent {
  return agentForConfig(config, {
    holder,
    logger: deps.logger,
    metrics: deps.metrics,
    ...(deps.now === undefined ? {} : { now: deps.now }),
  });
}

/**
 * The `outbound.tcp` listeners' shared cap on open tunnels, lowered (and said so) where the open-file limit is low:
 * half of what the outbound's descriptors allow, two per tunnel (the app's socket and the mesh one), the HTTP outbound
 * listener keeping the other half. Any local process may connect to them; without a share of the budget, 1,000
 * connections to one of them took every descriptor of a sidecar limited to 900, and the inbound and /readyz with it.
 */
function tcpOutboundTotal(config: SidecarConfig, limits: Partial<TcpLimits> | undefined, logger: Logger): number {
  const configured = (limits?.maxConnections ?? TCP_LIMITS.maxConnections) * config.outbound.tcp.size;
  const applied = outboundConnectionCap(configured, openFileLimit(), config.inbound.limits, true);
  if (applied < configured) {
    logger.warn(
      { direction: 'outbound', protocol: 'tcp', configured, applied },
      'outbound.tcp listeners: open tunnels capped to fit the open-file limit (ulimit -n) beside the inbound',
    );
  }
  return applied;
}
