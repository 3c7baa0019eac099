// The rule names meshauth gives its own decisions, in the `rule` field of deny log lines, of a 403 body and of the
// authz and gateway decision metrics. Pure data with one owner: whatever decides under one of these names imports it
// from here, and the policy schema refuses a user rule of the same name (its lines and series would read as ours).
import type { PathRejectReason } from '../path-normalize.js';

export const DEFAULT_DENY_RULE = 'default-deny';
export const AMBIGUOUS_PATH_RULE = 'path-normalization';
export const TCP_POLICY_INVALID_RULE = 'tcp-policy-invalid';

/** The gateway's own decisions on a request, made before or instead of the policy file. */
export const EDGE_RULES = Object.freeze({
  noRoute: 'no-route',
  authentication: 'authentication',
  crossSite: 'cross-site',
  loginApi: 'api-401',
  loginRedirect: 'redirect',
} as const);

/** A route's end-user requirement the user does not meet, by requirement. */
export const EDGE_REQUIREMENT_RULES = Object.freeze({
  scopes: 'route-scopes',
  roles: 'route-roles',
  groups: 'route-groups',
  claims: 'route-claims',
} as const);

/** The allow of a gateway without a policy file, by the route's login mode. */
export const EDGE_LOGIN_RULES = Object.freeze({
  required: 'route-login-required',
  optional: 'route-login-optional',
  none: 'route-login-none',
} as const);

// A path the normalizer refuses, by its reason: typed by the normalizer's reasons, so a new one cannot be left out.
const PATH_REFUSALS = {
  not_origin_form: 'a request-target that is not an origin-form path',
  bad_char: 'a path with a control, space or non-ASCII character',
  nul: 'a path with a NUL',
  backslash: 'a path with a backslash',
  encoded_slash: 'a path with an encoded slash or backslash',
  bad_percent_encoding: 'a path with an invalid percent-encoding',
  path_param: 'a path with a `;` parameter',
  fragment: 'a target with a fragment',
} as const satisfies Record<PathRejectReason, string>;

/**
 * The gateway's refusals of a request before a route is chosen, under the `rule` they are counted and logged with
 * (`route=""`): the refusal's reason, each with what it refuses. The gateway reports no other name there
 * (edge-refusal.ts), so this is the list the policy schema reserves.
 */
export const EDGE_REFUSAL_RULES = Object.freeze({
  http_1_0: 'an HTTP/1.0 request',
  target_form: 'a request-target that is not origin-form',
  host_missing: 'a request without a Host',
  host_repeated: 'a request with more than one Host',
  host_invalid: 'a Host that is not host[:port]',
  host_authority_mismatch: 'an HTTP/2 host header that differs from :authority',
  transfer_encoding: 'a Transfer-Encoding other than chunked',
  header_list_size: 'an HTTP/2 header list over the size limit',
  header_count: 'a request head of more header fields than node:http keeps whole',
  headers_too_large: 'a request head over the size limit',
  http_malformed: 'a request head the HTTP parser could not read',
  request_timeout: 'a request not received within the server timeout',
  expectation: 'an Expect other than 100-continue',
  method: 'a CONNECT request',
  reserved_path: "a path in the gateway's own namespace",
  no_sign_in: 'the sign-in callback or logout of a gateway without sign-in',
  'logout-method': 'a logout by a method other than GET or POST',
  'logout-cross_site': 'a logout another site started',
  bad_request: 'a malformed request without a more precise reason',
  ...PATH_REFUSALS,
} as const);

/** A `rule` the gateway may report for a refusal before routing: one of the list above, or no route at all. */
export type EdgeRefusalRule = keyof typeof EDGE_REFUSAL_RULES | typeof EDGE_RULES.noRoute;

/** Whether `reason` is one of the gateway's refusal rules (a reason from elsewhere may not be). */
export function isEdgeRefusalRule(reason: string): reason is keyof typeof EDGE_REFUSAL_RULES {
  return Object.hasOwn(EDGE_REFUSAL_RULES, reason);
}

export interface ReservedRule {
  readonly name: string;
  /** What meshauth decides under the name: the refusal of a user rule so named says it. */
  readonly decision: string;
}

/** Every name above, each with its decision. */
export const RESERVED_RULES: readonly ReservedRule[] = Object.freeze(
  [
    { name: DEFAULT_DENY_RULE, decision: 'the deny when no rule matches' },
    { name: AMBIGUOUS_PATH_RULE, decision: 'the 400 for a request whose path can be read two ways' },
    { name: TCP_POLICY_INVALID_RULE, decision: 'the refusal of a TCP connection under a policy TCP cannot enforce' },
    { name: EDGE_RULES.noRoute, decision: "the gateway's refusal of a request no route matches" },
    { name: EDGE_RULES.authentication, decision: "the gateway's refusal of a credential that does not verify" },
    { name: EDGE_RULES.crossSite, decision: "the gateway's refusal of a cross-site request in a browser session" },
    { name: EDGE_RULES.loginApi, decision: "the gateway's 401 for an API call without a user" },
    { name: EDGE_RULES.loginRedirect, decision: "the gateway's redirect of a browser to sign in" },
    ...Object.entries(EDGE_REQUIREMENT_RULES).map(([requirement, name]) => ({
      name,
      decision: `the gateway's refusal of a user without the route's ${requirement}`,
    })),
    ...Object.entries(EDGE_LOGIN_RULES).map(([login, name]) => ({
      name,
      decision: `the gateway's allow on a \`login: ${login}\` route when it has no policy file`,
    })),
    ...Object.entries(EDGE_REFUSAL_RULES).map(([name, refused]) => ({
      name,
      decision: `the gateway's refusal, before any route, of ${refused}`,
    })),
  ].map((rule) => Object.freeze(rule)),
);

const BY_NAME: ReadonlyMap<string, ReservedRule> = new Map(RESERVED_RULES.map((rule) => [rule.name, rule]));

/** The reserved rule of that name, or undefined when a policy may use it. */
export function reservedRule(name: string): ReservedRule | undefined {
  return BY_NAME.get(name);
}
