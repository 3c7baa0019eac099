// The stages every listener is built from, in flow order: accept the head → authenticate → authorize → set the
// identity headers → forward (AppForwarder). Authenticators and authorizers are the small functions the
// composition root built from config (identity-hooks.ts); a stage only runs them and records what they decided.
import { isMeshauthError, type MeshauthError } from '../../errors/index.js';
import type { Metrics } from '../../telemetry/index.js';
import { HAS_BODY, STRIPPED_IDENTITY } from '../http-headers.js';
import { setIdentityHeaders } from '../identity-headers.js';
import type { AuthzVerdict, EndUserOutcome, InboundRequestView } from '../inbound/inbound-hooks.js';
import type { Exchange, Stage } from './exchange.js';
import { authorizeError, deniedByPolicy, noVerifiedClient, peerSvidExpired, tokenInvalid } from './rejections.js';

/** Method and head checks (request-checks.ts): a head the policy and the app could read two ways stops here. */
export function acceptHead(maxHeaderBytes: number): Stage {
  return (exchange) => {
    const refusal = exchange.sink.refusal(exchange.method, exchange.target, maxHeaderBytes);
    if (refusal !== undefined) throw refusal;
  };
}

/**
 * The peer's certificate, checked at the handshake, is still valid: a connection kept busy must not outlive the SVID
 * it was opened with (short lifetimes are how the mesh revokes an identity: the CA stops renewing it).
 */
export function peerUnexpired(nowMs: () => number): Stage {
  return (exchange) => {
    const peer = exchange.peer;
    if (peer !== undefined && peer.notAfterMs <= nowMs()) throw peerSvidExpired();
  };
}

export interface AuthenticateOptions {
  /** The 401 message when the hook throws something that is not a MeshauthError. */
  readonly failure: string;
  /** The external listener: a request must come out with a verified user (fail closed), chain [] by default. */
  readonly requireUser: boolean;
  /**
   * A rejection whose caller left while it was decided (a JWKS fetch, say): nobody gets the answer, so runStages
   * reports nothing, and a refused token or passport must still have its one log line (the verifier writes none).
   */
  readonly unanswered: (exchange: Exchange, rejection: MeshauthError) => void;
}

/** Runs an end-user authenticator; its rejection (and e.g. `www-authenticate`) answers the request. */
export function authenticateWith(
  hook: (view: InboundRequestView) => Promise<EndUserOutcome>,
  options: AuthenticateOptions,
): Stage {
  return async (exchange) => {
    let outcome: EndUserOutcome;
    try {
      outcome = await hook(exchange.view());
    } catch (error) {
      throw reported(exchange, isMeshauthError(error) ? error : tokenInvalid(options.failure, error), options);
    }
    if (outcome.reject !== undefined) {
      exchange.rejectHeaders = outcome.rejectHeaders;
      throw reported(exchange, outcome.reject, options);
    }
    if (options.requireUser) {
      if (outcome.user === undefined) throw noVerifiedClient();
      exchange.outcome = outcome.chain === undefined ? { ...outcome, chain: [] } : outcome;
      return;
    }
    exchange.outcome = outcome;
  };
}

/** `rejection`, reported through `unanswered` first when the caller is gone (runStages then drops it). */
function reported(exchange: Exchange, rejection: MeshauthError, options: AuthenticateOptions): MeshauthError {
  if (exchange.sink.closed && !exchange.ended) options.unanswered(exchange, rejection);
  return rejection;
}

/** Runs the authorizer (a throw is a deny), counts its decision, answers a deny (with the rule name if exposed). */
export function authorizeWith(hook: (view: InboundRequestView) => AuthzVerdict, metrics: Metrics): Stage {
  return (exchange) => {
    let verdict: AuthzVerdict;
    try {
      verdict = hook(exchange.view());
    } catch (error) {
      verdict = authorizeError(error);
    }
    metrics.authzDecisions.inc({
      decision: verdict.decision ?? (verdict.allow ? 'allow' : 'deny'),
      rule: verdict.rule ?? '',
    });
    exchange.verdict = verdict;
    if (verdict.allow) return;
    if (verdict.exposeRule === true && verdict.rule !== undefined) exchange.rejectBody = { rule: verdict.rule };
    throw deniedByPolicy(verdict, exchange.method, exchange.target);
  };
}

/**
 * Strip, then set: the verified identity headers go first — XFCC from the mTLS peer, the end-user headers from the
 * authenticator — so that an app which keeps only the first fields of a long head (Node 20 keeps 1,000) still sees
 * them; then the copy, which drops hop-by-hop and every received identity header. A request that tried to set one of
 * them itself is reported (`onStripped`: a metric and a rate-limited log line); it still goes on, without them.
 */
export function identityHeaders(onStripped: (exchange: Exchange) => void): Stage {
  return (exchange) => {
    const outcome = exchange.outcome;
    const out: string[] = [];
    setIdentityHeaders(out, { xfcc: exchange.peer?.xfcc, headers: outcome?.headers });
    const flags = exchange.copyAppHeaders(out);
    exchange.appHasBody = (flags & HAS_BODY) !== 0;
    if ((flags & STRIPPED_IDENTITY) !== 0) onStripped(exchange);
    exchange.appHeaders = out;
  };
}
