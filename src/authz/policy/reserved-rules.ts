// The rule names meshauth gives its own decisions, in the `rule` field of deny log lines, of a 403 body and of the
// authz and gateway decision metrics. Pure data with one owner: whatever decides under one of these names imports it
// from here, and the policy schema refuses a user rule of the same name (its lines and series would read as ours).

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
  ].map((rule) => Object.freeze(rule)),
);

const BY_NAME: ReadonlyMap<string, ReservedRule> = new Map(RESERVED_RULES.map((rule) => [rule.name, rule]));

/** The reserved rule of that name, or undefined when a policy may use it. */
export function reservedRule(name: string): ReservedRule | undefined {
  return BY_NAME.get(name);
}
