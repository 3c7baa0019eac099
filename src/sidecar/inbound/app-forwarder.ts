// The last stage of the inbound and external pipelines: the request, with its identity headers set, streamed to
// the app over a bounded undici pool (one per listener). A peer may hold at most a share of the pool's
// connections with requests in flight; its further requests wait for one of its own to finish. So one client's
// slow uploads cannot take the app from everyone else, and a busy client (a gateway, say) is slowed, not failed.
// The peer is the caller's SPIFFE ID; on the external listener, where no client certificate names the caller, it is
// the verified end user (every client there used to share one share, so one token holder could take it all).
import { Pool } from 'undici';
import type { EndUser } from '../../authn/index.js';
import { formatHostPort, type SidecarConfig } from '../../config/index.js';
import type { Exchange } from '../pipeline/exchange.js';
import { trackingClient } from '../pool-connections.js';
import { APP_POOL_PEER_SHARE, type InboundLimits } from './limits.js';

export class AppForwarder {
  readonly #pool: Pool;
  readonly #maxPerPeer: number;
  /** App requests in flight per peer (shareKey). */
  readonly #inFlight = new Map<string, number>();
  /**
   * Requests of a peer over its share, oldest first: bounded by per-peer connections × what each may have in flight
   * (h2 streams, or MAX_PIPELINED_REQUESTS on HTTP/1.1).
   */
  readonly #waiting = new Map<string, Exchange[]>();

  constructor(config: SidecarConfig, limits: InboundLimits) {
    const appTimeout = config.inbound.appTimeoutMs;
    this.#pool = new Pool(`http://${formatHostPort(config.inbound.app)}`, {
      // Bounded: requests beyond this wait in the pool's queue instead of opening app connections without end.
      connections: limits.appConnections,
      headersTimeout: appTimeout,
      bodyTimeout: appTimeout,
      keepAliveTimeout: 60_000,
      connectTimeout: Math.min(appTimeout, 10_000),
      factory: trackingClient, // an aborted exchange ends its connection, and no replacement is opened for it
    });
    this.#maxPerPeer = Math.max(1, Math.floor(limits.appConnections * APP_POOL_PEER_SHARE));
  }

  /** The forward stage (pipeline/stages.ts order: after identityHeaders, which built `appHeaders`). */
  readonly forward = (exchange: Exchange): void => {
    const key = shareKey(exchange);
    if ((this.#inFlight.get(key) ?? 0) < this.#maxPerPeer) {
      this.#dispatch(exchange, key);
      return;
    }
    let queue = this.#waiting.get(key);
    if (queue === undefined) {
      queue = [];
      this.#waiting.set(key, queue);
    }
    queue.push(exchange);
    // A waiting request whose stream ends (caller reset, stream idle timeout) leaves the queue unsent.
    exchange.sink.onClose(() => this.#unqueue(key, exchange));
  };

  #dispatch(exchange: Exchange, key: string): void {
    this.#inFlight.set(key, (this.#inFlight.get(key) ?? 0) + 1);
    const sink = exchange.sink;
    sink.onClose(() => this.#release(key));
    const handler = sink.forwardHandler(exchange.peerId, exchange.startedAt);
    this.#pool.dispatch(
      {
        path: exchange.verdict?.forwardTarget ?? exchange.target,
        method: exchange.method as 'GET',
        headers: exchange.appHeaders as string[],
        body: exchange.appHasBody ? sink.body() : null,
      },
      handler,
    );
  }

  /** Waits for requests in flight until `deadline` (ms since epoch), then closes every app connection. */
  async close(deadline: number): Promise<void> {
    const closed = this.#pool.close();
    await Promise.race([closed, new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())).unref())]);
    await this.#pool.destroy().catch(() => undefined);
  }

  #release(key: string): void {
    const left = (this.#inFlight.get(key) ?? 1) - 1;
    if (left === 0) this.#inFlight.delete(key);
    else this.#inFlight.set(key, left);
    const queue = this.#waiting.get(key);
    const next = queue?.shift();
    if (queue?.length === 0) this.#waiting.delete(key);
    if (next !== undefined) this.#dispatch(next, key);
  }

  #unqueue(key: string, exchange: Exchange): void {
    const queue = this.#waiting.get(key);
    const at = queue?.indexOf(exchange) ?? -1;
    if (queue === undefined || at === -1) return;
    queue.splice(at, 1);
    if (queue.length === 0) this.#waiting.delete(key);
  }
}

/**
 * Whose share a request counts against: the caller's SPIFFE ID, else (external listener) its verified end user by
 * issuer and subject alone (two tokens of one client that differ in a claim are still one caller).
 */
function shareKey(exchange: Exchange): string {
  if (exchange.peerId !== '') return exchange.peerId;
  const user = exchange.outcome?.user as EndUser | undefined;
  return user === undefined ? '' : `user:${user.iss} ${user.sub}`;
}
