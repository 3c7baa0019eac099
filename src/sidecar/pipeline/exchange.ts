// One request on its way through a listener's stages: what arrived, what
// the stages learned (end user, verdict), and the Sink that answers it (HTTP/1.1 or h2, so no stage branches on
// the protocol). A stage throws a MeshauthError to stop the exchange; runStages answers it through the sink.
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { isMeshauthError, MeshauthError } from '../../errors/index.js';
import type { VerifiedPeer } from '../../tls/index.js';
import type { ForwardHandler } from '../forward-handler.js';
import { headerLinesByName, removeHeader } from '../http-headers.js';
import type { AuthzVerdict, EndUserOutcome, InboundRequestView } from '../inbound/inbound-hooks.js';

/** The downstream side of one exchange: reads the request as received, answers errors, feeds the app's answer. */
export interface Sink {
  readonly h2: boolean;
  /** The received headers as Node's object (h2: one line per single-value name; HTTP/1.1: first line). */
  readonly headers: IncomingHttpHeaders;
  /** Every received line, `[name, value, …]`: HTTP/1.1 Node's raw list; h2 the decoded list, pseudo-headers included. */
  readonly rawHeaders: readonly string[];
  /** Host / :authority as received (already checked to be one host[:port]). */
  readonly authority: string;
  readonly sourceIp: string;
  /** The reason to refuse this request head before any stage that reads it (request-checks.ts), if any. */
  refusal(method: string, target: string, maxHeaderBytes: number): MeshauthError | undefined;
  /**
   * Appends to `out` (which holds the identity headers) the listener's own forwarding headers where it sets them,
   * then the received headers without hop-by-hop and identity headers; returns http-headers.ts flags:
   * HAS_BODY when a body follows, STRIPPED_IDENTITY when a received identity header was dropped.
   */
  copyHeaders(out: string[], peer: VerifiedPeer | undefined): number;
  /** The request body for the app (aborted, never ended, when the caller cuts it), or null. */
  body(): Readable | null;
  /** Answers with the sidecar's JSON error (plus optional response headers and body fields). */
  reject(
    error: MeshauthError,
    extraHeaders: Readonly<Record<string, string>> | undefined,
    extraBody: Readonly<Record<string, string>> | undefined,
  ): void;
  /** The dispatch handler that streams the app's response into this sink. */
  forwardHandler(peerId: string, startedAt: number): ForwardHandler;
  /** Registers `listener` for when the exchange is over (response done, or the caller gone). */
  onClose(listener: () => void): void;
  /** The exchange is over already: its stream or response closed (the caller reset or disconnected, say). */
  readonly closed: boolean;
}

export class Exchange<S extends Sink = Sink> {
  readonly sink: S;
  /** The mTLS peer; undefined on the external listener. */
  readonly peer: VerifiedPeer | undefined;
  /** `peer_id` metric label ('' without a peer). */
  readonly peerId: string;
  readonly method: string;
  readonly target: string;
  /** The listener port the request arrived on. */
  readonly port: number;
  /** performance.now() at arrival. */
  readonly startedAt: number;
  /** What the end-user step verified (headers for the app, the user for authorize, a rejection). */
  outcome: EndUserOutcome | undefined;
  verdict: AuthzVerdict | undefined;
  /** Extra response headers / body fields for a rejection thrown by the stage that set them. */
  rejectHeaders: Readonly<Record<string, string>> | undefined;
  rejectBody: Readonly<Record<string, string>> | undefined;
  /** The header list for the app, built by the identity-headers stage. */
  appHeaders: string[] | undefined;
  appHasBody = false;
  /**
   * The sidecar ended the exchange outside the stages (the stream idle timeout answered or reset it, and reported
   * it): a stage still pending when that happened is not followed by the next one, nor reported (runStages; the
   * same holds when the caller went away, `sink.closed`).
   */
  ended = false;

  constructor(
    sink: S,
    peer: VerifiedPeer | undefined,
    method: string,
    target: string,
    port: number,
    startedAt: number,
  ) {
    this.sink = sink;
    this.peer = peer;
    this.peerId = peer?.idString ?? '';
    this.method = method;
    this.target = target;
    this.port = port;
    this.startedAt = startedAt;
  }

  /**
   * Appends to `out` the request's headers as the app gets them: the sink's copy (the listener's own X-Forwarded-*,
   * the received headers without hop-by-hop and identity headers, the Host an h2 request names in `:authority`),
   * without an `Authorization` the end-user step drops. Returns the sink's flags (http-headers.ts).
   */
  copyAppHeaders(out: string[]): number {
    const flags = this.sink.copyHeaders(out, this.peer);
    if (this.outcome?.dropAuthorization === true) removeHeader(out, 'authorization');
    return flags;
  }

  /**
   * The header lines the app will get, identity headers aside, by lower-case name: what policy header conditions
   * read, so that none is met or missed by a header the app does not get as read. Built when asked: most policies
   * have no header condition.
   */
  appHeaderLines(): Map<string, string[]> {
    const out: string[] = [];
    this.copyAppHeaders(out);
    return headerLinesByName(out);
  }

  /** The hooks' view (built once, on the hooks path only), with what the end-user step verified. */
  view(): InboundRequestView {
    const sink = this.sink;
    const outcome = this.outcome;
    const exchange = this;
    let appHeaderLines: Map<string, string[]> | undefined;
    return {
      peer: this.peer as VerifiedPeer,
      method: this.method,
      target: this.target,
      authority: sink.authority,
      // Read when a hook asks: an HTTP/1.1 header object is built on first use (node:http's and the lean lane's alike),
      // and the policy reads an HTTP/1.1 request's raw lines instead.
      get headers() {
        return sink.headers;
      },
      rawHeaders: sink.rawHeaders,
      get appHeaderLines() {
        appHeaderLines ??= exchange.appHeaderLines();
        return appHeaderLines;
      },
      sourceIp: sink.sourceIp,
      port: this.port,
      httpVersion: sink.h2 ? '2' : '1.1',
      ...(outcome?.user === undefined ? {} : { user: outcome.user }),
      ...(outcome?.chain === undefined ? {} : { chain: outcome.chain }),
    };
  }
}

/** One step of a listener. Throws a MeshauthError (or rejects with one) to answer the exchange and stop. */
export type Stage = (exchange: Exchange) => void | Promise<void>;

/** Reports a rejection (metric + one log line); the sink has already answered. */
export type OnRejected = (exchange: Exchange, error: MeshauthError) => void;

/**
 * Runs `stages` in order: synchronously while they return nothing (the mTLS-only path allocates no promise),
 * continuing after a stage's promise settles. The first error is answered through the sink and reported.
 */
export function runStages(stages: readonly Stage[], exchange: Exchange, onRejected: OnRejected, from = 0): void {
  for (let i = from; i < stages.length; i++) {
    let pending: void | Promise<void>;
    try {
      pending = (stages[i] as Stage)(exchange);
    } catch (error) {
      fail(exchange, error, onRejected);
      return;
    }
    if (pending !== undefined) {
      pending.then(
        () => {
          if (!over(exchange)) runStages(stages, exchange, onRejected, i + 1);
        },
        (error: unknown) => {
          if (!over(exchange)) fail(exchange, error, onRejected);
        },
      );
      return;
    }
  }
}

/**
 * A stage settled after the exchange ended: the sidecar ended it (`ended`), or the caller reset the stream or
 * disconnected while the stage waited (a JWKS fetch, say). Nothing follows: no later stage (AppForwarder would take
 * a per-peer slot whose release waits on a 'close' already emitted), no answer, no rejection nobody received.
 */
function over(exchange: Exchange): boolean {
  return exchange.ended || exchange.sink.closed;
}

function fail(exchange: Exchange, error: unknown, onRejected: OnRejected): void {
  const rejection = isMeshauthError(error)
    ? error
    : new MeshauthError('MESHAUTH_ERR_BAD_REQUEST', 'request failed in a stage', { cause: error });
  exchange.sink.reject(rejection, exchange.rejectHeaders, exchange.rejectBody);
  onRejected(exchange, rejection);
}
