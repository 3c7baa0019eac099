// PolicyDocument → CompiledPolicy: defaults applied, every condition turned into a Check, rules indexed.
// Pure. Compiled once per load; decide() then only runs the checks of the rules the index hands it.

import type { SpiffeId } from '../../identity/index.js';
import type { AuthzRequest } from '../authz-request.js';
import { headerValues } from '../authz-request.js';
import { type Check, CompiledPolicy, type CompiledRule, type IndexKeys } from './compiled-policy.js';
import type { Decision, PolicyMode } from './decision.js';
import { chainIncludes, chainStartsWith } from './match-chain.js';
import { claimAt, describeClaimCondition } from './match-claims.js';
import { type HeaderCondition, headerMatches, policyHeaderName } from './match-headers.js';
import { normalizeHost } from './match-host.js';
import { compileIdMatcher, idMatches } from './match-id.js';
import { type Cidr, cidrContains, parseCidr } from './match-ip.js';
import { compilePathMatcher, pathMatches, patternMatchForm } from './match-path.js';
import {
  createZoneFormatter,
  inWindow,
  parseClock,
  type TimeWindow,
  type TimeWindowSpec,
  WEEKDAYS,
} from './match-time.js';
import { type UserCondition, type UserField, userClaimsMatch, userFieldMatches } from './match-user.js';
import { RequestContext } from './request-context.js';
import { DEFAULT_DENY_RULE } from './reserved-rules.js';
import type { PolicyDocument, PolicyRule } from './schema.js';

// Peer checks never read the context; this one is only there to satisfy the Check signature.
const PEER_CONTEXT = new RequestContext();
const USER_FIELDS: readonly UserField[] = ['sub', 'iss', 'client_id', 'scope', 'groups'];
/** How explain() shows the peer of a request from the external listener. */
const NO_PEER = '(no mTLS peer: external client)';

export function compilePolicy(document: PolicyDocument): CompiledPolicy {
  const mode: PolicyMode = document.mode ?? 'enforce';
  const formatters = new Map<string, Intl.DateTimeFormat>();
  const rules = document.rules.map((rule, index) => compileRule(rule, index, mode, formatters));
  const defaultDecision = frozenDecision('deny', DEFAULT_DENY_RULE, mode, [
    rules.length === 0 ? 'the policy has no rules: everything is denied' : 'no rule matched: default deny',
  ]);
  return new CompiledPolicy({
    name: document.metadata?.name,
    mode,
    exposeRuleNames: document.exposeRuleNames ?? false,
    rules,
    defaultDecision,
  });
}

function compileRule(
  rule: PolicyRule,
  index: number,
  mode: PolicyMode,
  formatters: Map<string, Intl.DateTimeFormat>,
): CompiledRule {
  const peerChecks = compilePeerChecks(rule);
  const methods = rule.to?.methods === undefined ? undefined : methodSet(rule.to.methods);
  return {
    name: rule.name,
    index,
    action: rule.action,
    peerChecks,
    testPeer: (peer: SpiffeId | undefined) => {
      const request = peerOnly(peer);
      return peerChecks.every((c) => c.test(request, PEER_CONTEXT));
    },
    methods,
    methodCheck:
      methods === undefined
        ? undefined
        : check(
            'to.methods',
            `one of ${list(rule.to?.methods)}`,
            (r) => methods.has(r.method),
            (r) => r.method,
          ),
    checks: [...compileToChecks(rule), ...compileWhenChecks(rule, formatters)],
    indexKeys: indexKeysOf(rule),
    decision: frozenDecision(rule.action, rule.name, mode, [`rule "${rule.name}" (${rule.action}) matched`]),
  };
}

/**
 * The methods a rule's `to.methods` covers: those listed, and HEAD wherever GET is. A HEAD is a GET without the
 * body, and Express, Spring, Flask, Rails and Go's ServeMux run the GET handler for it, with its
 * side effects and response headers: a deny on GET that let HEAD through would not deny what it says.
 */
function methodSet(listed: readonly string[]): ReadonlySet<string> {
  const methods = new Set(listed);
  if (methods.has('GET')) methods.add('HEAD');
  return methods;
}

function compilePeerChecks(rule: PolicyRule): Check[] {
  const from = rule.from;
  const checks: Check[] = [];
  if (from === undefined) return checks;
  // `from` describes an mTLS peer: a request without one (the external listener) never matches it, not even
  // `from: {}` or `from.notIds`. The first check says so; every other one is false without a peer as well.
  const peer = (r: AuthzRequest): string => r.peerId?.toString() ?? NO_PEER;
  checks.push(
    check(
      'from',
      'an mTLS peer (a mesh workload)',
      (r) => r.peerId !== undefined,
      (r) => (r.peerId === undefined ? NO_PEER : r.peerId.toString()),
    ),
  );
  if (from.ids !== undefined) {
    const m = compileIdMatcher(from.ids);
    checks.push(
      check('from.ids', `one of ${list(from.ids)}`, (r) => r.peerId !== undefined && idMatches(m, peer(r)), peer),
    );
  }
  if (from.notIds !== undefined) {
    const m = compileIdMatcher(from.notIds);
    checks.push(
      check(
        'from.notIds',
        `none of ${list(from.notIds)}`,
        (r) => r.peerId !== undefined && !idMatches(m, peer(r)),
        peer,
      ),
    );
  }
  if (from.namespaces !== undefined) {
    const set = new Set(from.namespaces);
    const namespaceOf = (r: AuthzRequest): string | undefined => r.peerId?.kubernetes?.namespace;
    checks.push(
      check(
        'from.namespaces',
        `one of ${list(from.namespaces)}`,
        (r) => set.has(namespaceOf(r) ?? ''),
        (r) => (r.peerId === undefined ? NO_PEER : (namespaceOf(r) ?? '(not a Kubernetes ID)')),
      ),
    );
  }
  if (from.trustDomains !== undefined) {
    const set = new Set(from.trustDomains);
    checks.push(
      check(
        'from.trustDomains',
        `one of ${list(from.trustDomains)}`,
        (r) => r.peerId !== undefined && set.has(r.peerId.trustDomain.name),
        (r) => r.peerId?.trustDomain.name ?? NO_PEER,
      ),
    );
  }
  return checks;
}

function compileToChecks(rule: PolicyRule): Check[] {
  const to = rule.to;
  const checks: Check[] = [];
  if (to === undefined) return checks;
  if (to.ports !== undefined) {
    const set = new Set(to.ports);
    checks.push(
      check(
        'to.ports',
        `one of ${list(to.ports)}`,
        (r) => set.has(r.port),
        (r) => String(r.port),
      ),
    );
  }
  if (to.hosts !== undefined) {
    const set = new Set(to.hosts.map(normalizeHost));
    checks.push(
      check(
        'to.hosts',
        `one of ${list([...set])}`,
        (_r, c) => set.has(c.host),
        (_r, c) => c.host,
      ),
    );
  }
  if (to.paths !== undefined) {
    // A deny also catches the spellings with escaped delimiters that an app decodes into its path, and the path cut
    // at an escaped `?` or `#` that such an app splits off as its query (match-path.ts). Allows read the path as is.
    const deny = rule.action === 'deny';
    const m = compilePathMatcher(deny ? to.paths.map(patternMatchForm) : to.paths);
    checks.push(
      check(
        'to.paths',
        `one of ${list(to.paths)}`,
        deny
          ? (_r, c) => pathMatches(m, c.decodedPath) || (c.cutPath !== undefined && pathMatches(m, c.cutPath))
          : (r) => pathMatches(m, r.path),
        (r) => r.path,
      ),
    );
  }
  return checks;
}

function compileWhenChecks(rule: PolicyRule, formatters: Map<string, Intl.DateTimeFormat>): Check[] {
  const when = rule.when;
  const checks: Check[] = [];
  if (when === undefined) return checks;
  if (when.headers !== undefined) {
    const quantifier = rule.action === 'allow' ? 'every' : 'any';
    for (const [rawName, allowed] of Object.entries(when.headers)) {
      const condition: HeaderCondition = { name: policyHeaderName(rawName), allowed };
      checks.push(
        check(
          `when.headers.${condition.name}`,
          `${quantifier === 'every' ? 'every value' : 'some value'} in ${list(allowed)}`,
          (r) => headerMatches(condition, r.headers, quantifier),
          (r) => showList(headerValues(r.headers, condition.name)),
        ),
      );
    }
  }
  if (when.user !== undefined) {
    const condition: UserCondition = when.user;
    checks.push(
      check(
        'when.user',
        'a verified end user',
        (r) => r.user !== undefined,
        () => '(no end user)',
      ),
    );
    for (const field of USER_FIELDS) {
      const wanted = condition[field];
      if (wanted === undefined) continue;
      const expected = field === 'scope' ? `all of ${list(wanted)}` : `one of ${list(wanted)}`;
      checks.push(
        check(
          `when.user.${field}`,
          expected,
          (r) => userFieldMatches(condition, field, r.user),
          (r) => showClaim(r.user?.[field]),
        ),
      );
    }
    // `when.user.claims`: one check per dotted path, so explain() names the claim that did not hold.
    for (const [path, claim] of Object.entries(condition.claims ?? {})) {
      const one = { [path]: claim };
      checks.push(
        check(
          `when.user.claims.${path}`,
          describeClaimCondition(claim),
          (r) => userClaimsMatch(one, r.user),
          (r) => showClaim(claimAt(r.user, path)),
        ),
      );
    }
  }
  if (when.chain !== undefined) {
    const path = (r: AuthzRequest): string =>
      showList([...(r.chain ?? []), ...(r.peerId === undefined ? [] : [r.peerId.toString()])]);
    // The call path ends at the mTLS peer: without one (the external listener) there is no path, whatever chain a
    // request claims, so a chain condition never matches it (docs/policy.md).
    const { includes, startsWith } = when.chain;
    if (includes !== undefined) {
      const m = compileIdMatcher(includes);
      checks.push(
        check(
          'when.chain.includes',
          `a hop in ${list(includes)}`,
          (r) => r.peerId !== undefined && chainIncludes(m, r.chain, r.peerId.toString()),
          path,
        ),
      );
    }
    if (startsWith !== undefined) {
      const firsts = typeof startsWith === 'string' ? [startsWith] : startsWith;
      const m = compileIdMatcher(firsts);
      checks.push(
        check(
          'when.chain.startsWith',
          `first hop in ${list(firsts)}`,
          (r) => r.peerId !== undefined && chainStartsWith(m, r.chain, r.peerId.toString()),
          path,
        ),
      );
    }
  }
  if (when.sourceIps !== undefined) {
    const ranges = when.sourceIps.map((s) => parseCidr(s) as Cidr);
    checks.push(
      check(
        'when.sourceIps',
        `in ${list(when.sourceIps)}`,
        (_r, c) => {
          const ip = c.ip;
          return ip !== undefined && ranges.some((range) => cidrContains(range, ip));
        },
        (r) => r.sourceIp || '(none)',
      ),
    );
  }
  if (when.time !== undefined) {
    const specs: readonly TimeWindowSpec[] = Array.isArray(when.time) ? when.time : [when.time];
    const windows = specs.map((spec) => compileWindow(spec, formatters));
    checks.push(
      check(
        'when.time',
        `within ${windows.map((w) => w.text).join(' or ')}`,
        (_r, c) => windows.some((w) => inWindow(w, c.localTime(w.formatter))),
        (r, c) =>
          windows
            .map((w) => {
              const t = c.localTime(w.formatter);
              return `${WEEKDAYS[t.day]} ${clock(t.minute)} ${w.formatter.resolvedOptions().timeZone}`;
            })
            .join(', ') || r.now.toISOString(),
      ),
    );
  }
  return checks;
}

function compileWindow(spec: TimeWindowSpec, formatters: Map<string, Intl.DateTimeFormat>): TimeWindow {
  const timeZone = spec.timeZone ?? 'UTC';
  let formatter = formatters.get(timeZone);
  if (formatter === undefined) {
    formatter = createZoneFormatter(timeZone);
    formatters.set(timeZone, formatter);
  }
  const days = spec.days ?? WEEKDAYS;
  const dayMask = days.reduce((mask, day) => mask | (1 << WEEKDAYS.indexOf(day)), 0);
  return {
    dayMask,
    from: parseClock(spec.from, false) ?? 0,
    to: parseClock(spec.to, true) ?? 0,
    formatter,
    text: `${spec.days === undefined ? 'every day' : days.join(',')} ${spec.from}–${spec.to} ${timeZone}`,
  };
}

function indexKeysOf(rule: PolicyRule): IndexKeys {
  const none: IndexKeys = { ids: [], idPrefixes: [], namespaces: [], trustDomains: [] };
  const from = rule.from;
  if (from === undefined) return none;
  // One necessary condition is enough to file the rule; the most selective one keeps buckets small.
  if (from.ids !== undefined) {
    return {
      ...none,
      ids: from.ids.filter((id) => !id.endsWith('/*')),
      idPrefixes: from.ids.filter((id) => id.endsWith('/*')).map((id) => id.slice(0, -1)),
    };
  }
  if (from.namespaces !== undefined) return { ...none, namespaces: from.namespaces };
  if (from.trustDomains !== undefined) return { ...none, trustDomains: from.trustDomains };
  return none;
}

function check(field: string, expected: string, test: Check['test'], actual: Check['actual']): Check {
  return { field, expected, test, actual };
}

/** Peer checks read only `peerId`, so the index can run them once per peer with a minimal request. */
function peerOnly(peerId: SpiffeId | undefined): AuthzRequest {
  return { peerId } as AuthzRequest;
}

function frozenDecision(decision: Decision['decision'], rule: string, mode: PolicyMode, reasons: string[]): Decision {
  return Object.freeze({ decision, rule, mode, enforced: mode === 'enforce', reasons: Object.freeze(reasons) });
}

function list(values: readonly (string | number)[] | undefined): string {
  return `[${(values ?? []).map((v) => (typeof v === 'number' ? String(v) : JSON.stringify(v))).join(', ')}]`;
}

function showList(values: readonly string[] | undefined): string {
  return values === undefined ? '(absent)' : list(values);
}

function showClaim(value: unknown): string {
  if (value === undefined) return '(absent)';
  return JSON.stringify(value)?.slice(0, 200) ?? String(value);
}

function clock(minute: number): string {
  return `${String(Math.floor(minute / 60)).padStart(2, '0')}:${String(minute % 60).padStart(2, '0')}`;
}
