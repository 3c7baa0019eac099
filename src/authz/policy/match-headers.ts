// Header conditions for `when.headers`. Pure and allocation-free.
// Every value counts: a repeated header and each comma-separated element of every value are all evaluated, so
// `x-role: user` + `x-role: admin` or `x-role: user,admin` can never be judged on its first value alone (the Istio
// multi-value header bypass). Which way the extra values count depends on the rule's action, so an extra value
// can only make the outcome stricter:
//   allow rule: the header is present and EVERY element is one of the listed values;
//   deny rule:  the header is present and ANY element is one of the listed values.
import { type AuthzHeaders, headerValues } from '../authz-request.js';

export interface HeaderCondition {
  /** Lower-case header name. */
  readonly name: string;
  readonly allowed: readonly string[];
}

export type HeaderQuantifier = 'every' | 'any';

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * The name a header condition matches by: lower case, `_` read as `-`. The sidecar drops request headers whose names
 * hold `_` (CGI, WSGI, PHP and Rack read `x_role` as `x-role`), so a rule written `x_debug` means the header the app
 * reads as `HTTP_X_DEBUG`: `x-debug`.
 */
export function policyHeaderName(name: string): string {
  const lower = name.toLowerCase();
  return lower.includes('_') ? lower.replaceAll('_', '-') : lower;
}

export function headerNameError(name: string): string | undefined {
  if (!TOKEN.test(name)) return 'expected an HTTP header name (RFC 9110 token)';
  const lower = policyHeaderName(name);
  // A `__proto__` key would be dropped by the schema's record parsing, silently removing the condition.
  if (name.toLowerCase() === '__proto__') return 'expected an HTTP header name, not "__proto__"';
  // Identity headers are stripped and set by the sidecar itself: before that a client can send any value,
  // after it they are not request input. Either way a condition on them cannot mean what it says.
  if (lower === 'x-forwarded-client-cert' || lower.startsWith('x-meshauth-')) {
    return 'identity headers set by the sidecar cannot be matched: use from, when.user or when.chain';
  }
  return undefined;
}

export function headerMatches(
  condition: HeaderCondition,
  headers: AuthzHeaders,
  quantifier: HeaderQuantifier,
): boolean {
  const values = headerValues(headers, condition.name);
  if (values === undefined || values.length === 0) return false;
  for (const value of values) {
    let start = 0;
    while (start <= value.length) {
      let end = value.indexOf(',', start);
      if (end === -1) end = value.length;
      const listed = elementListed(condition.allowed, value, start, end);
      if (quantifier === 'any' && listed) return true;
      if (quantifier === 'every' && !listed) return false;
      start = end + 1;
    }
  }
  return quantifier === 'every';
}

/** Is value[start, end), without optional whitespace around it, one of the allowed strings? */
function elementListed(allowed: readonly string[], value: string, start: number, end: number): boolean {
  let s = start;
  let e = end;
  while (s < e && isOws(value.charCodeAt(s))) s++;
  while (e > s && isOws(value.charCodeAt(e - 1))) e--;
  for (const candidate of allowed) {
    if (candidate.length === e - s && value.startsWith(candidate, s)) return true;
  }
  return false;
}

function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}
