// The metrics on one prom-client registry per process role. Components receive a Metrics object
// rather than importing a global, so a test (or `meshauth demo`) can run a CA and several sidecars in one process
// with separate registries. Labels are bounded: no paths, no users, no raw client input.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { CountTally } from './count-tally.js';
import { DurationHistogram } from './duration-histogram.js';
import { exposeEventLoopDelay, PROM_CLIENT_SAMPLER_OFF_MS } from './event-loop-delay.js';
import { PacedRender } from './paced-render.js';
import { PeerIdLabels } from './peer-id-labels.js';

export interface MetricsOptions {
  /** Include process_* and nodejs_* metrics (on in real processes, off in tests that share a process). */
  readonly defaultMetrics?: boolean;
}

// prom-client's default collector exposes three gauges named *_total, which promtool rejects (a _total suffix is
// reserved for counters). They are dropped from the exposition; everything else of the default set stays.
const PROMTOOL_INVALID_DEFAULTS = new Set([
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
]);

/** At most 20 renderings of the exposition a second, however often /metrics is asked (paced-render.ts). */
export const EXPOSITION_INTERVAL_MS = 50;

// From 0.1 ms: a sidecar's own time (and every refusal, at a sidecar or the edge) is a fraction of a millisecond, all
// in one bucket otherwise.
const REQUEST_DURATION_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

export class Metrics {
  readonly registry = new Registry();

  /** The bounded `peer_id` values of meshauth_requests_total and meshauth_tcp_connections_total, shared by both. */
  readonly peerIds = new PeerIdLabels();

  readonly requests: Counter<'direction' | 'peer_id' | 'code'> = new Counter({
    name: 'meshauth_requests_total',
    help: 'Requests handled by the sidecar, by direction, authenticated peer SPIFFE ID (past the first inbound.limits.maxPeerIdLabels IDs: other) and HTTP status code.',
    labelNames: ['direction', 'peer_id', 'code'] as const,
    registers: [this.registry],
    collect: () => this.requestCounts.flush(),
  });

  /** What the request path adds to meshauth_requests_total (count-tally.ts): read through `requests`. */
  readonly requestCounts = new CountTally(this.requests);

  /** Observed once per request, so not prom-client's Histogram (duration-histogram.ts). */
  readonly requestDuration = new DurationHistogram({
    name: 'meshauth_request_duration_seconds',
    help: 'Time from request received to response headers sent, by direction.',
    labelName: 'direction',
    buckets: REQUEST_DURATION_BUCKETS,
    registers: [this.registry],
  });

  readonly tlsHandshakeFailures = new Counter({
    name: 'meshauth_tls_handshake_failures_total',
    help: 'TLS handshakes refused or failed, by direction and reason.',
    labelNames: ['direction', 'reason'] as const,
    registers: [this.registry],
  });

  readonly authzDecisions = new Counter({
    name: 'meshauth_authz_decisions_total',
    help: 'Authorization decisions, by decision and deciding rule.',
    labelNames: ['decision', 'rule'] as const,
    registers: [this.registry],
  });

  /** Registered by the roles that hold an SVID (exposeSvidExpiry): 0 there means none held yet. */
  readonly svidExpiry = new Gauge({
    name: 'meshauth_svid_expiry_timestamp_seconds',
    help: 'Unix time at which the current X509-SVID expires (0: none held yet).',
    registers: [],
  });

  /** With svidExpiry, the SVID's lifetime: an alert can tell a short-lived SVID near its end from a failing renewal. */
  readonly svidNotBefore = new Gauge({
    name: 'meshauth_svid_not_before_timestamp_seconds',
    help: 'Unix time from which the current X509-SVID is valid, its notBefore (0: none held yet).',
    registers: [],
  });

  readonly svidRotations = new Counter({
    name: 'meshauth_svid_rotations_total',
    help: 'SVID fetch and rotation attempts, by result.',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  /** Registered by the roles that run an agent (exposeBundleRefreshes), each result from 0 there. */
  readonly bundleRefreshes = new Counter({
    name: 'meshauth_bundle_refreshes_total',
    help: "Trust bundle fetches by the agent (GET /v1/bundle), by result: ok (accepted, new roots or the same), or why the bundle was not taken: unreachable, tls, malformed, no_certificate, bundle_without_ca_root (it would drop the root of the CA's own certificate), apply_failure, error (any other, e.g. an HTTP error status).",
    labelNames: ['result'] as const,
    registers: [],
  });

  readonly caSvidsIssued = new Counter({
    name: 'meshauth_ca_svids_issued_total',
    help: 'X509-SVIDs and JWT-SVIDs issued by the CA, by method.',
    labelNames: ['method'] as const,
    registers: [this.registry],
  });

  readonly caRequestsRejected = new Counter({
    name: 'meshauth_ca_requests_rejected_total',
    help: 'CA API requests rejected, by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly passportVerifications = new Counter({
    name: 'meshauth_passport_verifications_total',
    help: 'Passport checks, by result: on inbound requests ok or why the passport was refused; on outbound requests the passports from the app that were not wrapped (unknown_passport: never received or expired; route_audience: the route names no single SPIFFE ID; format: more than one passport header).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly requestsRejected = new Counter({
    name: 'meshauth_requests_rejected_total',
    help: 'Requests rejected before reaching the app or the peer, by direction and error code.',
    labelNames: ['direction', 'code'] as const,
    registers: [this.registry],
  });

  readonly tokenVerifications = new Counter({
    name: 'meshauth_enduser_token_verifications_total',
    help: 'End-user bearer token verifications, by result.',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly policyReloads = new Counter({
    name: 'meshauth_policy_reloads_total',
    help: 'Policy file reloads, by result.',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly connectionsOpen = new Gauge({
    name: 'meshauth_connections_open',
    help: 'Client connections currently open on a listener (TCP accepted, handshaking or established), by direction.',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });

  readonly connectionsRejected = new Counter({
    name: 'meshauth_connections_rejected_total',
    help: 'Client connections refused or closed by a limit, by direction and reason.',
    labelNames: ['direction', 'reason'] as const,
    registers: [this.registry],
  });

  readonly streamsReset = new Counter({
    name: 'meshauth_streams_reset_total',
    help: 'Exchanges ended by a reset instead of a complete message (truncation, idle stream), by direction and reason.',
    labelNames: ['direction', 'reason'] as const,
    registers: [this.registry],
  });

  readonly identityHeadersStripped = new Counter({
    name: 'meshauth_identity_headers_stripped_total',
    help: 'Requests that carried identity headers only meshauth may set (x-forwarded-client-cert, x-meshauth-*; from a peer sidecar the passport excepted), removed before the app or service, by direction (inbound, external, edge).',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });

  readonly logLinesSuppressed = new Counter({
    name: 'meshauth_log_lines_suppressed_total',
    help: 'Log lines not written because their event was rate-limited, by event.',
    labelNames: ['event'] as const,
    registers: [this.registry],
  });

  readonly tcpConnections = new Counter({
    name: 'meshauth_tcp_connections_total',
    help: 'TCP tunnel connections (ALPN meshauth-tcp/2, or /1 from older peers; egress: CONNECT tunnels), by direction, peer SPIFFE ID (past the first inbound.limits.maxPeerIdLabels IDs: other) and result.',
    labelNames: ['direction', 'peer_id', 'result'] as const,
    registers: [this.registry],
  });

  readonly tcpSentBytes = new Counter({
    name: 'meshauth_tcp_sent_bytes_total',
    help: 'Payload bytes from the local app sent through TCP tunnels to the peer sidecar (egress: the destination), by direction.',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });

  readonly tcpReceivedBytes = new Counter({
    name: 'meshauth_tcp_received_bytes_total',
    help: 'Payload bytes received through TCP tunnels from the peer sidecar (egress: the destination) for the local app, by direction.',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });

  readonly tcpConnectionsOpen = new Gauge({
    name: 'meshauth_tcp_connections_open',
    help: 'TCP tunnels currently open, by direction.',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });

  readonly tcpConnectionDuration = new Histogram({
    name: 'meshauth_tcp_connection_duration_seconds',
    help: 'Lifetime of established TCP tunnels, from tunnel start to close, by direction.',
    labelNames: ['direction'] as const,
    buckets: [0.01, 0.1, 1, 10, 60, 300, 900, 3600, 14400, 86400],
    registers: [this.registry],
  });

  readonly endpoints = new Gauge({
    name: 'meshauth_endpoints',
    help: 'Endpoints (resolved peer addresses) of outbound routes, by route key and state (active or ejected).',
    labelNames: ['route', 'state'] as const,
    registers: [this.registry],
  });

  readonly endpointEjections = new Counter({
    name: 'meshauth_endpoint_ejections_total',
    help: 'Endpoints taken out of balancing after consecutive connect failures, by route key.',
    labelNames: ['route'] as const,
    registers: [this.registry],
  });

  readonly requestRetries = new Counter({
    name: 'meshauth_request_retries_total',
    help: 'Requests sent a second time because the peer provably never processed the first attempt, by reason.',
    labelNames: ['direction', 'reason'] as const,
    registers: [this.registry],
  });

  readonly dnsResolutions = new Counter({
    name: 'meshauth_dns_resolutions_total',
    help: 'DNS resolutions of outbound route addresses, by result (success, partial: one address family failed, empty, failure).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly gatewayLogins = new Counter({
    name: 'meshauth_gateway_logins_total',
    help: 'Browser sign-ins at the gateway, by result (ok, or the reason the callback was refused).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly gatewaySessionRefreshes = new Counter({
    name: 'meshauth_gateway_session_refreshes_total',
    help: 'Gateway sessions renewed with the refresh token before the access token expired, by result.',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly gatewaySessionsRejected = new Counter({
    name: 'meshauth_gateway_sessions_rejected_total',
    help: 'Session cookies the gateway could not use (tampered, unknown_key, malformed, idle, expired...), by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly gatewayRequests = new Counter({
    name: 'meshauth_gateway_requests_total',
    help: "Requests answered at the gateway's public listener (its own answers and the services' alike), by route (empty: no route took the request) and HTTP status code.",
    labelNames: ['route', 'code'] as const,
    registers: [this.registry],
  });

  readonly gatewayRequestDuration = new Histogram({
    name: 'meshauth_gateway_request_duration_seconds',
    help: 'Time at the gateway from request received to response headers sent, by route (empty: no route took the request).',
    labelNames: ['route'] as const,
    buckets: REQUEST_DURATION_BUCKETS,
    registers: [this.registry],
  });

  readonly gatewayDecisions = new Counter({
    name: 'meshauth_gateway_decisions_total',
    help: 'Edge decisions of the gateway, by route, decision (allow, deny, login) and deciding rule.',
    labelNames: ['route', 'decision', 'rule'] as const,
    registers: [this.registry],
  });

  readonly webhookReviews = new Counter({
    name: 'meshauth_webhook_reviews_total',
    help: 'Admission reviews answered by the injection webhook, by result (injected, skipped, error, invalid).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  /** Registered by the webhook (exposeWebhookAnnotationWarnings): unlabelled, it reads 0 in any role that has it. */
  readonly webhookAnnotationWarnings = new Counter({
    name: 'meshauth_webhook_annotation_warnings_total',
    help: 'Admission reviews of pods injected with config.meshauth.dev annotations that are no setting (ignored, with a warning).',
    registers: [],
  });

  readonly webhookCertReloads = new Counter({
    name: 'meshauth_webhook_cert_reloads_total',
    help: 'Reloads of the webhook serving certificate after its files changed, by result.',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly caCertificateExpiry = new Gauge({
    name: 'meshauth_ca_certificate_expiry_timestamp_seconds',
    help: 'Unix time at which the CA certificate in use expires, by kind (root, intermediate).',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  // An unlabelled gauge reads 0 from its creation: registered with the others, every sidecar, gateway and webhook
  // would report a CA that cannot sign (and page on `meshauth_ca_issuer_valid == 0`) and CA queues of their own. Only
  // a CA has them: this one joins the registry at its first value (setCaIssuerValid), the queue gauges when a CA
  // server starts (exposeCaQueueGauges).
  readonly caIssuerValid = new Gauge({
    name: 'meshauth_ca_issuer_valid',
    help: 'Whether the CA can sign with its intermediate (1) or not (0: expired or not valid yet, every CSR refused; or the CA files on disk changed to an intermediate that cannot be loaded, while the last good one signs on).',
    registers: [],
  });

  readonly caIntermediateRotations = new Counter({
    name: 'meshauth_ca_intermediate_rotations_total',
    help: 'Automatic intermediate rotations by the CA (--auto-rotate-intermediate), by result.',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly caQueueDepth = new Gauge({
    name: 'meshauth_ca_queue_depth',
    help: 'CA requests signing or waiting to sign (bounded by ca serve --max-queue; past it, 429).',
    registers: [],
  });

  readonly caConnectionsWaiting = new Gauge({
    name: 'meshauth_ca_connections_waiting',
    help: 'TCP connections to the CA API waiting for a turn at the TLS handshake (their first bytes read and held).',
    registers: [],
  });

  readonly enduserJwksRefreshes = new Counter({
    name: 'meshauth_enduser_jwks_refreshes_total',
    help: 'End-user JWKS loads (URL fetches, reads of a changed file), by source (url, file) and result (ok or the failure).',
    labelNames: ['source', 'result'] as const,
    registers: [this.registry],
  });

  // Not in meshauth_enduser_jwks_refreshes_total: the CA is no end-user issuer, and an alert on that metric must
  // not read a CA outage as the identity provider's.
  readonly gatewayJwtSvidJwksRefreshes = new Counter({
    name: 'meshauth_gateway_jwt_svid_jwks_refreshes_total',
    help: "Loads of the CA's JWKS by the gateway's JWT-SVID verifier, by result (ok or the failure).",
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  constructor(options: MetricsOptions = {}) {
    if (options.defaultMetrics) {
      collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: PROM_CLIENT_SAMPLER_OFF_MS });
      exposeEventLoopDelay(this.registry);
    }
  }

  /**
   * meshauth_svid_expiry_timestamp_seconds and meshauth_svid_not_before_timestamp_seconds, exposed by a sidecar or
   * gateway from its start on (0 until an SVID).
   */
  exposeSvidExpiry(): void {
    this.#expose(this.svidExpiry);
    this.#expose(this.svidNotBefore);
  }

  /** The validity of the SVID now held. */
  recordSvid(validity: { readonly notBefore: Date; readonly notAfter: Date }): void {
    this.svidExpiry.set(validity.notAfter.getTime() / 1000);
    this.svidNotBefore.set(validity.notBefore.getTime() / 1000);
  }

  /** meshauth_bundle_refreshes_total, exposed by a process that runs an agent from the agent's creation on. */
  exposeBundleRefreshes(): void {
    this.#expose(this.bundleRefreshes);
  }

  /** meshauth_ca_queue_depth and meshauth_ca_connections_waiting, exposed from a CA server's start on. */
  exposeCaQueueGauges(): void {
    this.#expose(this.caQueueDepth);
    this.#expose(this.caConnectionsWaiting);
  }

  /** meshauth_webhook_annotation_warnings_total, exposed by the webhook from its creation on (0 until a review). */
  exposeWebhookAnnotationWarnings(): void {
    this.#expose(this.webhookAnnotationWarnings);
  }

  /** meshauth_ca_issuer_valid, exposed from its first value on (see caIssuerValid). */
  setCaIssuerValid(valid: boolean): void {
    this.#expose(this.caIssuerValid);
    this.caIssuerValid.set(valid ? 1 : 0);
  }

  /**
   * The metrics of one role (its unlabelled gauges, the agent's bundle refresh counter) are registered by that role:
   * created unregistered, each reads 0 from its creation, and in every other role's exposition that 0 would say
   * something false.
   */
  #expose(metric: Gauge | Counter): void {
    if (this.#exposed.has(metric)) return;
    this.registry.registerMetric(metric);
    this.#exposed.add(metric);
  }

  readonly #exposed = new Set<Gauge | Counter>();

  readonly #paced = new PacedRender(() => this.exposition(), EXPOSITION_INTERVAL_MS);

  /**
   * The exposition for a /metrics request: rendered after the call, at most once per EXPOSITION_INTERVAL_MS however
   * often it is asked, one rendering shared by the requests that wait for it (paced-render.ts).
   */
  pacedExposition(): Promise<string> {
    return this.#paced.get();
  }

  /** Prometheus text exposition without the promtool-invalid default gauges. */
  async exposition(): Promise<string> {
    const text = await this.registry.metrics();
    if (!text.includes('_total')) return text;
    return text
      .split('\n')
      .filter((line) => {
        const name = metricNameOf(line);
        return name === undefined || !PROMTOOL_INVALID_DEFAULTS.has(name);
      })
      .join('\n');
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

function metricNameOf(line: string): string | undefined {
  if (line.startsWith('# HELP ') || line.startsWith('# TYPE ')) {
    return line.slice(7).split(' ', 1)[0];
  }
  if (line === '' || line.startsWith('#')) return undefined;
  const match = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
  return match?.[0];
}
