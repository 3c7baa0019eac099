// The extension points of the inbound Policy Enforcement Point. The PEP calls at most one
// authenticateEndUser (async) and one authorize (sync) per request; when a hook is absent the call is skipped
// entirely, so the mTLS-only path allocates no promise and no request view.
import type { IncomingHttpHeaders } from 'node:http';
import type { ErrorCode, MeshauthError } from '../../errors/index.js';
import type { VerifiedPeer } from '../../tls/index.js';

/** What the hooks see of one inbound request. Headers are as received (before identity headers are stripped). */
export interface InboundRequestView {
  readonly peer: VerifiedPeer;
  /** Upper-case method as received. */
  readonly method: string;
  /** Request-target as received (`/path?query`), not normalized. */
  readonly target: string;
  /** Host header or `:authority`. */
  readonly authority: string;
  /** Lower-case names; repeated headers are arrays (Node's IncomingHttpHeaders). */
  readonly headers: IncomingHttpHeaders;
  /**
   * Every received line, `[name, value, …]` (HTTP/1.1: Node's raw list; h2: the decoded list, pseudo-headers
   * included): on both, Node keeps only the first of a repeated `authorization` in `headers`.
   */
  readonly rawHeaders?: readonly string[];
  /**
   * The header lines the app will get (identity headers aside), by lower-case name: what policy header conditions
   * read. Absent in a view not built by a listener (the policy then reads the received lines).
   */
  readonly appHeaderLines?: ReadonlyMap<string, readonly string[]>;
  readonly sourceIp: string;
  /** The inbound listener port the request arrived on. */
  readonly port: number;
  readonly httpVersion: '1.1' | '2';
  /** Set by authenticateEndUser for authorize to read (a verified end user, never raw claims). */
  readonly user?: unknown;
  /** SPIFFE IDs before the peer, from a verified passport (`act` chain). */
  readonly chain?: readonly string[];
}

export interface AuthzVerdict {
  readonly allow: boolean;
  /** The policy's decision for the metric when it differs from `allow` (audit mode: a deny that passes). */
  readonly decision?: 'allow' | 'deny';
  /** On deny: include the rule name in the 403 body (`exposeRuleNames`). */
  readonly exposeRule?: boolean;
  /** The deciding rule's name (metric label `rule`; bounded by the policy size). */
  readonly rule?: string;
  /** On deny: the code to answer with (its status comes from the error registry); default MESHAUTH_ERR_FORBIDDEN. */
  readonly code?: ErrorCode;
  /** Bounded reason for logs (e.g. `no_rule_matched`, `deny_rule`, `path_ambiguous`). */
  readonly reason: string;
  /** On allow: the request-target to forward instead of the received one (the normalized path the policy judged). */
  readonly forwardTarget?: string;
}

/** The Policy Decision Point hook: synchronous, one call per request. */
export type Authorize = (request: InboundRequestView) => AuthzVerdict;

export interface EndUserOutcome {
  /** Headers to set for the app (e.g. `x-meshauth-user`, `x-meshauth-passport`): first, every received copy stripped. */
  readonly headers?: Readonly<Record<string, string>>;
  /** The verified end user, handed to authorize. */
  readonly user?: unknown;
  readonly chain?: readonly string[];
  /** Refuse the request with this error (401 token errors, passport errors). */
  readonly reject?: MeshauthError;
  /** Extra response headers for a rejection (e.g. `www-authenticate`). */
  readonly rejectHeaders?: Readonly<Record<string, string>>;
  /** Remove `authorization` before forwarding (the raw end-user token stops here unless forwardOriginalToken). */
  readonly dropAuthorization?: boolean;
}

/** The end-user hook (JWT / passport validation): async, optional. */
export type AuthenticateEndUser = (request: InboundRequestView) => Promise<EndUserOutcome>;

export interface InboundHooks {
  readonly authorize?: Authorize;
  readonly authenticateEndUser?: AuthenticateEndUser;
}
