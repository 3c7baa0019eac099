// Limits of the TCP tunnels (outbound listeners and inbound handler). Pure constants; the composition root may
// pass overrides (tests shorten the timeouts).

export interface TcpLimits {
  /**
   * Concurrent tunnels per outbound listener, in total on the inbound side, and in total for the outbound's egress
   * tunnels (CONNECT to an `outbound.egress` entry). Not a config key: the composition root may override it.
   */
  readonly maxConnections: number;
  /** Concurrent inbound tunnels of one peer SPIFFE ID. */
  readonly maxConnectionsPerPeer: number;
  /** A tunnel with no byte in either direction for this long is closed. */
  readonly idleTimeoutMs: number;
  /** Connect + TLS handshake to the peer sidecar (outbound), connect to the app (inbound). */
  readonly connectTimeoutMs: number;
}

/** Idle timeout as Envoy's TCP proxy default (1 h): database connections in a pool sit idle for long stretches. */
export const TCP_LIMITS: TcpLimits = Object.freeze({
  maxConnections: 4096,
  maxConnectionsPerPeer: 256,
  idleTimeoutMs: 3_600_000,
  connectTimeoutMs: 10_000,
});
