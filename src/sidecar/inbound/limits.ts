// The inbound's resource limits and their defaults (SECURITY.md lists them). One object per listener; tests and
// the composition root override single fields. Pure data: nothing here reads a clock or a socket.
import { INBOUND_LIMIT_DEFAULTS, type InboundLimitSettings } from '../../config/index.js';

/** The configurable limits (`inbound.limits`, defaults in the config module) and the HTTP/1.1 timers. */
export interface InboundLimits extends InboundLimitSettings {
  /** HTTP/1.1: the whole request head must arrive within this (slowloris, 408). */
  readonly headersTimeoutMs: number;
  /** HTTP/1.1: the whole request (head and body) must arrive within this (408). */
  readonly requestTimeoutMs: number;
  /**
   * HTTP/1.1: an idle keep-alive connection is closed after this. The listener sets it to `sessionIdleTimeoutMs`
   * (one idle limit for both protocols); only a test's override sets it apart.
   */
  readonly keepAliveTimeoutMs: number;
}

export const DEFAULT_INBOUND_LIMITS: InboundLimits = Object.freeze({
  ...INBOUND_LIMIT_DEFAULTS,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 300_000,
  keepAliveTimeoutMs: INBOUND_LIMIT_DEFAULTS.sessionIdleTimeoutMs,
});

/**
 * One peer may hold at most this share of the app connections with requests in flight, so a single client that
 * opens many slow uploads cannot take the whole pool from everyone else (its extra requests wait for its own).
 */
export const APP_POOL_PEER_SHARE = 0.75;

/**
 * How many times its share of the app connections one peer may have waiting for them (384 with the defaults). A
 * busy caller keeps several rounds of its share queued and is slowed, not failed; past that its requests are
 * refused at once (503, or REFUSED_STREAM on the inbound's h2), not held with their headers for as long as the app
 * takes.
 */
export const APP_QUEUE_PER_SHARE = 4;

/** How often a flood-triggerable event (handshake failures, refused connections) is written to the log. */
export const FLOOD_LOG_INTERVAL_MS = 10_000;
