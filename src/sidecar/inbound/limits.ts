// The inbound's resource limits and their defaults (SECURITY.md lists them). One object per listener; tests and
// the composition root override single fields. Pure data: nothing here reads a clock or a socket.

export interface InboundLimits {
  /** Open client connections (TCP accepted, handshaking or established); more are dropped at accept. */
  readonly maxConnections: number;
  /** TLS handshakes in progress at once; more new connections are closed at accept. */
  readonly maxHandshakes: number;
  /** A connection that has not finished its TLS handshake by then is closed. */
  readonly handshakeTimeoutMs: number;
  /** Established connections of one authenticated SPIFFE ID. */
  readonly maxConnectionsPerPeer: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per session (RFC 9113 §6.5.2). */
  readonly maxConcurrentStreams: number;
  /** A request/response exchange with no byte in either direction for this long is reset. */
  readonly streamIdleTimeoutMs: number;
  /** An HTTP/2 session with no stream in flight for this long gets GOAWAY and is closed. */
  readonly sessionIdleTimeoutMs: number;
  /** Connections to the app (one pool per listener). */
  readonly appConnections: number;
  /** Request header list size, HTTP/1.1 head and HTTP/2 (RFC 7541 §4.1 size); more is 431. */
  readonly maxHeaderBytes: number;
  /** HTTP/1.1: the whole request head must arrive within this (slowloris, 408). */
  readonly headersTimeoutMs: number;
  /** HTTP/1.1: the whole request (head and body) must arrive within this (408). */
  readonly requestTimeoutMs: number;
  /** HTTP/1.1: an idle keep-alive connection is closed after this. */
  readonly keepAliveTimeoutMs: number;
}

export const DEFAULT_INBOUND_LIMITS: InboundLimits = Object.freeze({
  maxConnections: 4096,
  maxHandshakes: 256,
  handshakeTimeoutMs: 5_000,
  maxConnectionsPerPeer: 256,
  maxConcurrentStreams: 100,
  streamIdleTimeoutMs: 30_000,
  sessionIdleTimeoutMs: 75_000,
  appConnections: 128,
  maxHeaderBytes: 16 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 300_000,
  keepAliveTimeoutMs: 65_000,
});

/**
 * One peer may hold at most this share of the app connections with requests in flight, so a single client that
 * opens many slow uploads cannot take the whole pool from everyone else (its extra requests get 503).
 */
export const APP_POOL_PEER_SHARE = 0.75;

/** How often a flood-triggerable event (handshake failures, refused connections) is written to the log. */
export const FLOOD_LOG_INTERVAL_MS = 10_000;

export function inboundLimits(overrides: Partial<InboundLimits> | undefined): InboundLimits {
  return overrides === undefined ? DEFAULT_INBOUND_LIMITS : Object.freeze({ ...DEFAULT_INBOUND_LIMITS, ...overrides });
}
