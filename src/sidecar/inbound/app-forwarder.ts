// The last stage of the inbound and external pipelines: the request, with its identity headers set, streamed to
// the app over a bounded set of kept-alive HTTP/1.1 connections (Http1Client, one per listener). A peer may hold at most a share of the pool's
// connections with requests in flight; its further requests wait for one of its own to finish. So one client's
// slow uploads cannot take the app from everyone else, and a busy client (a gateway, say) is slowed, not failed.
// A peer may have at most APP_QUEUE_PER_SHARE times its share waiting: past that its requests are refused before any
// work (upstreamBusy), since each waiting request holds its whole header list and stream state.
// The peer is the caller's SPIFFE ID; on the external listener, where no client certificate names the caller, it is
// the verified end user (every client there used to share one share, so one token holder could take it all).
import type { EndUser } from '../../authn/index.js';
import type { SidecarConfig } from '../../config/index.js';
import { MeshauthError } from '../../errors/index.js';
import { Http1Client } from '../http1-client.js';
import type { Exchange } from '../pipeline/exchange.js';
import { APP_POOL_PEER_SHARE, APP_QUEUE_PER_SHARE, type InboundLimits } from './limits.js';
import { PeerQueue } from './peer-queue.js';

/** The reason of upstreamBusy, in its log line. */
const PEER_QUEUE_FULL = 'peer_queue_full';

/** Sent with the HTTP answer of upstreamBusy: the queue moves at the app's pace, so a retry soon may fit. */
const RETRY_AFTER: Readonly<Record<string, string>> = Object.freeze({ 'retry-after': '1' });

export class AppForwarder {
  readonly #client: Http1Client;
  /**
   * Requests in flight per peer (shareKey), and those over its share waiting, oldest first. Without the bound on the
   * waiting, only per-peer connections × what each may have in flight (256 × 100 h2 streams) bounded them: one
   * identity could park 25,600 request heads, each up to maxHeaderBytes of HPACK-amplified headers.
   */
  readonly #queue: PeerQueue<Exchange>;
  /** The most requests of one peer that may wait (named in the refusal's log line). */
  readonly #maxWaiting: number;

  /** `onStrayAnswer`: the app sent an answer no request asked for (Http1Client stops reusing its connections a while). */
  constructor(config: SidecarConfig, limits: InboundLimits, onStrayAnswer?: () => void) {
    const appTimeout = config.inbound.appTimeoutMs;
    this.#client = new Http1Client({
      host: config.inbound.app.host,
      port: config.inbound.app.port,
      // Bounded: requests beyond this wait, in arrival order, instead of opening app connections without end.
      maxConnections: limits.appConnections,
      timeoutMs: appTimeout,
      connectTimeoutMs: Math.min(appTimeout, 10_000),
      // Under the idle time of common app servers (Node's 5 s, uvicorn's 5 s): the sidecar lets a kept connection go
      // first, instead of writing a request into the app's close. An app's `Keep-Alive: timeout` is honoured too.
      keepAliveMs: 4_000,
      retryStale: true,
      onStrayAnswer,
    });
    const maxPerPeer = Math.max(1, Math.floor(limits.appConnections * APP_POOL_PEER_SHARE));
    this.#maxWaiting = maxPerPeer * APP_QUEUE_PER_SHARE;
    this.#queue = new PeerQueue(maxPerPeer, this.#maxWaiting);
  }

  /**
   * The forward stage (pipeline/stages.ts order: after identityHeaders, which built `appHeaders`). Throws
   * upstreamBusy when the peer already has its share in flight and its most waiting.
   */
  readonly forward = (exchange: Exchange): void => {
    const key = shareKey(exchange);
    const admission = this.#queue.enter(key, exchange);
    if (admission === 'run') {
      this.#dispatch(exchange, key);
    } else if (admission === 'wait') {
      // A waiting request whose stream ends (caller reset, stream idle timeout) leaves the queue unsent.
      exchange.sink.onClose(() => this.#queue.leave(key, exchange));
    } else {
      exchange.rejectHeaders = RETRY_AFTER;
      throw upstreamBusy(this.#maxWaiting);
    }
  };

  #dispatch(exchange: Exchange, key: string): void {
    const sink = exchange.sink;
    sink.onClose(() => this.#release(key));
    this.#client.dispatch(
      {
        path: exchange.verdict?.forwardTarget ?? exchange.target,
        method: exchange.method,
        headers: exchange.appHeaders as string[],
        body: exchange.appHasBody ? sink.body() : null,
        // A kept app connection carries one caller's requests only (Http1Request.key).
        key,
      },
      sink.forwardHandler(exchange.peerId, exchange.startedAt),
    );
  }

  /** Waits for requests in flight until `deadline` (ms since epoch), then closes every app connection. */
  async close(deadline: number): Promise<void> {
    await this.#client.close(deadline);
  }

  #release(key: string): void {
    const next = this.#queue.release(key);
    if (next !== undefined) this.#dispatch(next, key);
  }
}

/**
 * A request of a peer that already has its share of the app in flight and `max` requests waiting: refused before
 * any work, so the peer may send it again (the app never saw it). The inbound's h2 sink sends REFUSED_STREAM, which
 * a peer sidecar retries; HTTP/1.1 and the external listener answer 503 with Retry-After.
 */
export function upstreamBusy(max: number): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_UPSTREAM_BUSY', 'too many requests of this caller waiting for the app', {
    reason: PEER_QUEUE_FULL,
    detail: { limit: 'waiting_per_peer', max },
  });
}

/**
 * Whose share a request counts against: the caller's SPIFFE ID, else (external listener) its verified end user by
 * issuer and subject alone (two tokens of one client that differ in a claim are still one caller).
 */
export function shareKey(exchange: Exchange): string {
  if (exchange.peerId !== '') return exchange.peerId;
  const user = exchange.outcome?.user as EndUser | undefined;
  return user === undefined ? '' : `user:${user.iss} ${user.sub}`;
}
