// The inbound Policy Enforcement Point's call into the Policy Decision Point: normalize the path
// (ambiguous paths get 400), build the AuthzRequest from what the TLS layer, the request and the end-user hook
// verified, decide, audit-log denies. The normalized path is also what the app receives (Istio practice).
// The same authorizer serves the external listener, whose requests have no mTLS peer (AuthzRequest.peerId unset).
import type { EndUser } from '../../authn/index.js';
import {
  AMBIGUOUS_PATH_RULE,
  type AuthzRequest,
  ambiguousPathAuditRecord,
  type CompiledPolicy,
  decide,
  decideWithMethodOverride,
  denyAuditRecord,
  normalizePath,
} from '../../authz/index.js';
import { isMeshauthError } from '../../errors/index.js';
import type { Logger } from '../../telemetry/index.js';
import type { AuthzVerdict, InboundRequestView } from './inbound-hooks.js';
import { h2HeaderView, headerLines } from './request-checks.js';

/** What the authorizer reads of a request: an inbound view, or an external one without an mTLS peer. */
export type AuthorizerView = Omit<InboundRequestView, 'peer'> & { readonly peer?: InboundRequestView['peer'] };

export interface PolicyAuthorizerOptions {
  /** The current compiled policy (the watcher swaps it on a valid change). */
  readonly policy: () => CompiledPolicy;
  readonly logger: Logger;
  readonly now: () => Date;
}

/** The returned function is an `Authorize` (inbound) and an `ExternalAuthorize` (external listener) at once. */
export function policyAuthorizer(options: PolicyAuthorizerOptions): (view: AuthorizerView) => AuthzVerdict {
  const { logger, now } = options;
  return (view: AuthorizerView): AuthzVerdict => {
    let normalized: ReturnType<typeof normalizePath>;
    try {
      normalized = normalizePath(view.target);
    } catch (error) {
      if (!isMeshauthError(error)) throw error;
      const user = view.user as EndUser | undefined;
      logger.info(
        ambiguousPathAuditRecord({ peerId: view.peer?.id, method: view.method, user: user?.claims }, view.target),
        'authz deny',
      );
      return {
        allow: false,
        decision: 'deny',
        rule: AMBIGUOUS_PATH_RULE,
        code: error.code,
        reason: error.reason ?? 'path_ambiguous',
      };
    }
    const policy = options.policy();
    const user = view.user as EndUser | undefined;
    let headers: AuthzRequest['headers'] | undefined;
    const request: AuthzRequest = {
      peerId: view.peer?.id,
      method: view.method,
      path: normalized.path,
      host: view.authority,
      port: view.port,
      // The lines the app will get (appHeaderLines: every line of a repeated header, none the copy drops, the
      // listener's own X-Forwarded-*), built on first read: most policies have no header condition.
      get headers() {
        headers ??= view.appHeaderLines ?? receivedHeaderLines(view);
        return headers;
      },
      sourceIp: view.sourceIp,
      user: user?.claims,
      chain: view.chain,
      now: now(),
    };
    // A POST with `?_method=DELETE` is also decided as the DELETE that method-override middleware makes of it.
    const { request: decided, decision } = decideWithMethodOverride(policy, request, normalized.query, decide);
    if (decision.decision === 'deny') logger.info(denyAuditRecord(decided, decision), 'authz deny');
    const allow = decision.decision === 'allow' || !decision.enforced;
    return {
      allow,
      decision: decision.decision,
      rule: decision.rule,
      reason: decision.decision === 'allow' ? 'rule_allowed' : decision.enforced ? 'policy_denied' : 'audit_only',
      exposeRule: policy.exposeRuleNames,
      ...(allow ? { forwardTarget: normalized.target } : {}),
    };
  };
}

/**
 * A view without appHeaderLines (built outside a listener): the received lines, without those the request's
 * Connection names and names with `_`, which never reach the app (headerLines, h2HeaderView).
 */
function receivedHeaderLines(view: AuthorizerView): AuthzRequest['headers'] {
  return view.httpVersion === '2' || view.rawHeaders === undefined
    ? h2HeaderView(view.headers)
    : headerLines(view.rawHeaders);
}
