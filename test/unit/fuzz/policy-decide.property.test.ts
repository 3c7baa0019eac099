// Property-based test of the policy compiler and decision point (docs/policy.md): random policies and random
// requests; decide() (with its peer/method index and caches) and explain() must equal a naive reference evaluator
// written here from the documented rules, rule by rule, with no index and no precompiled matchers.
import { BlockList } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AuthzRequest, AuthzUser } from '../../../src/authz/index.js';
import { compilePolicy, decide, explain } from '../../../src/authz/index.js';
import { policySchema } from '../../../src/authz/policy/schema.js';
import { SpiffeId } from '../../../src/identity/index.js';
import { fuzzParams, fuzzTimeout } from './fuzz-settings.js';

const RUNS = 250;

// --- pools: small on purpose, so random rules and random requests meet often ------------------------------------
const IDS = [
  'spiffe://a.org/ns/shop/sa/front',
  'spiffe://a.org/ns/shop/sa/orders',
  'spiffe://a.org/ns/edge/sa/gw',
  'spiffe://b.org/ns/shop/sa/front',
  'spiffe://a.org/job/x',
  'spiffe://a.org/ns/shop/sa/front/extra',
  'spiffe://a.org/ns/shopping/sa/front',
];
const ID_PATTERNS = [
  ...IDS,
  'spiffe://a.org/ns/shop/*',
  'spiffe://a.org/*',
  'spiffe://a.org/ns/*',
  'spiffe://b.org/ns/shop/sa/*',
  'spiffe://a.org/ns/shop/sa/front/*',
];
const NAMESPACES = ['shop', 'edge', 'shopping'];
const TRUST_DOMAINS = ['a.org', 'b.org'];
const METHODS = ['GET', 'POST', 'DELETE'];
const REQUEST_METHODS = [...METHODS, 'PATCH', 'BREW'];
const PATH_PATTERNS = ['/', '/orders', '/orders/*', '/users/{id}', '/users/{id}/*', '/admin', '/admin/*', '/a/{x}/{y}'];
const PATHS = ['/', '/orders', '/orders/', '/orders/1', '/users/1', '/users/1/', '/users/1/x', '/admin', '/admin/x'];
const EXTRA_PATHS = ['/users', '/users/', '/a/b/c', '/a/b', '/a/b/c/d', '/adminx', '/x'];
const HOSTS = ['orders.shop.svc', 'admin.svc', 'Orders.Shop.SVC.'];
const REQUEST_HOSTS = ['orders.shop.svc', 'Orders.Shop.svc:8080', 'orders.shop.svc.', 'admin.svc:443', 'x', '[::1]:80'];
const PORTS = [8080, 9090];
const HEADER_VALUES = ['user', 'admin', ''];
const REQUEST_HEADER_VALUES: readonly (string | string[] | undefined)[] = [
  undefined,
  'user',
  'admin',
  'user,admin',
  ' user ,\tuser',
  ['user', 'admin'],
  ['user'],
  [],
  '',
  'User',
];
const CIDRS = ['10.0.0.0/8', '192.168.1.1', '::1', '::ffff:10.0.0.0/104', 'fd00::/8', '0.0.0.0/0'];
const SOURCE_IPS = ['10.1.2.3', '::ffff:10.1.2.3', '192.168.1.1', '192.168.1.2', '::1', 'fd00::5', 'fe80::1%eth0', 'x'];
const USERS: readonly (AuthzUser | undefined)[] = [
  undefined,
  { sub: 'alice', iss: 'https://idp', scope: 'read write', groups: ['g1', 'g2'], client_id: 'web' },
  { sub: 'bob', iss: 'https://other', scope: ['read'], groups: 'g2' },
  { sub: 'carol', scope: 'reader writer' },
  { client_id: 'cli', scope: 'write' },
];
const TIMES = [
  { from: '09:00', to: '17:00' },
  { days: ['Mon', 'Tue'], from: '22:00', to: '02:00' },
  { days: ['Wed'], from: '00:00', to: '24:00', timeZone: 'Europe/Berlin' },
  { from: '12:30', to: '12:31', timeZone: 'Asia/Kolkata' },
];
const NOWS = [
  '2026-03-04T10:00:00Z', // Wed
  '2026-03-02T23:30:00Z', // Mon
  '2026-03-03T01:00:00Z', // Tue
  '2026-03-04T23:30:00Z', // Wed (Thu in Berlin)
  '2026-03-04T07:00:00Z', // Wed 12:30 in Kolkata
  '2026-03-01T08:59:00Z', // Sun
];

const some = <T>(pool: readonly T[]) => fc.uniqueArray(fc.constantFrom(...pool), { minLength: 1, maxLength: 3 });
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 2 });

const ruleArb = fc.record(
  {
    action: fc.constantFrom('allow', 'deny'),
    from: maybe(
      fc.record(
        {
          ids: some(ID_PATTERNS),
          notIds: some(ID_PATTERNS),
          namespaces: some(NAMESPACES),
          trustDomains: some(TRUST_DOMAINS),
        },
        { requiredKeys: [] },
      ),
    ),
    to: maybe(
      fc.record(
        { methods: some(METHODS), paths: some(PATH_PATTERNS), hosts: some(HOSTS), ports: some(PORTS) },
        { requiredKeys: [] },
      ),
    ),
    when: maybe(
      fc.record(
        {
          user: fc.record(
            {
              sub: some(['alice', 'bob']),
              iss: some(['https://idp']),
              scope: some(['read', 'write', 'reader']),
              groups: some(['g1', 'g2']),
              client_id: some(['web', 'cli']),
            },
            { requiredKeys: [] },
          ),
          headers: fc.record({ 'X-Role': some(HEADER_VALUES) }),
          sourceIps: some(CIDRS),
          time: fc.oneof(fc.constantFrom(...TIMES), some(TIMES)),
          chain: fc.oneof(
            fc.record({ includes: some(ID_PATTERNS) }),
            fc.record({ startsWith: fc.oneof(fc.constantFrom(...ID_PATTERNS), some(ID_PATTERNS)) }),
          ),
        },
        { requiredKeys: [] },
      ),
    ),
  },
  { requiredKeys: ['action'] },
);

const documentArb = fc
  .tuple(fc.array(ruleArb, { maxLength: 7 }), fc.constantFrom(undefined, 'enforce', 'audit'))
  .map(([rules, mode]) => ({
    apiVersion: 'meshauth.dev/v1',
    kind: 'Policy',
    ...(mode === undefined ? {} : { mode }),
    rules: rules.map((r, i) => ({ name: `rule-${i}`, ...stripUndefined(r) })),
  }));

function stripUndefined(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
}

const requestArb = fc.record({
  peer: fc.option(fc.constantFrom(...IDS), { nil: undefined, freq: 6 }),
  method: fc.constantFrom(...REQUEST_METHODS),
  path: fc.constantFrom(...PATHS, ...EXTRA_PATHS),
  host: fc.constantFrom(...REQUEST_HOSTS),
  port: fc.constantFrom(...PORTS, 443),
  role: fc.constantFrom(...REQUEST_HEADER_VALUES),
  headerForm: fc.constantFrom('map', 'record'),
  sourceIp: fc.constantFrom(...SOURCE_IPS),
  user: fc.constantFrom(...USERS),
  chain: fc.constantFrom(undefined, [], [IDS[2] as string], [IDS[2] as string, IDS[4] as string]),
  now: fc.constantFrom(...NOWS),
});

type RequestSpec = typeof requestArb extends fc.Arbitrary<infer T> ? T : never;

function toRequest(spec: RequestSpec): AuthzRequest {
  const values = spec.role === undefined ? undefined : typeof spec.role === 'string' ? [spec.role] : spec.role;
  const headers =
    spec.headerForm === 'map'
      ? new Map(values === undefined ? [] : [['x-role', values]])
      : values === undefined
        ? {}
        : { 'x-role': spec.role };
  return {
    peerId: spec.peer === undefined ? undefined : SpiffeId.parse(spec.peer),
    method: spec.method,
    path: spec.path,
    host: spec.host,
    port: spec.port,
    headers,
    sourceIp: spec.sourceIp,
    user: spec.user,
    chain: spec.chain,
    now: new Date(spec.now),
  } as AuthzRequest;
}

// --- the reference evaluator: docs/policy.md, literally --------------------------------------------------------
type Doc = ReturnType<typeof policySchema.parse>;
type Rule = Doc['rules'][number];

function idMatchesRef(patterns: readonly string[], id: string): boolean {
  return patterns.some((p) => {
    if (!p.endsWith('/*')) return p === id;
    const base = p.slice(0, -2);
    const a = base.split('/');
    const b = id.split('/');
    return b.length > a.length && a.every((s, i) => s === b[i]);
  });
}

function pathMatchesRef(pattern: string, path: string): boolean {
  const open = pattern.endsWith('/*');
  const pat = (open ? pattern.slice(0, -2) : pattern).split('/');
  const segs = path.split('/');
  if (open ? segs.length <= pat.length : segs.length !== pat.length) return false;
  return pat.every((p, i) => {
    const s = segs[i] as string;
    return p.startsWith('{') ? s !== '' : p === s;
  });
}

function hostRef(host: string): string {
  const h = host.toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  return h.replace(/:.*$/, '').replace(/\.$/, '');
}

function headerRef(values: readonly string[] | undefined, allowed: readonly string[], every: boolean): boolean {
  if (values === undefined || values.length === 0) return false;
  const elements = values.flatMap((v) => v.split(',').map((e) => e.replace(/^[ \t]+|[ \t]+$/g, '')));
  return every ? elements.every((e) => allowed.includes(e)) : elements.some((e) => allowed.includes(e));
}

function tokens(claim: unknown): string[] {
  if (typeof claim === 'string') return claim.split(' ').filter((s) => s !== '');
  return Array.isArray(claim) ? claim.filter((s): s is string => typeof s === 'string') : [];
}

function ipRef(cidrs: readonly string[], ip: string): boolean {
  const bare = ip.replace(/%.*$/, '');
  return cidrs.some((cidr) => {
    const [address = '', bitsText] = cidr.split('/');
    const list = new BlockList();
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;
    const addr = address.replace(mapped, '$1');
    const v4 = !addr.includes(':');
    const bits = bitsText === undefined ? (v4 ? 32 : 128) : Number(bitsText) - (address !== addr ? 96 : 0);
    list.addSubnet(addr, bits, v4 ? 'ipv4' : 'ipv6');
    const candidate = bare.replace(mapped, '$1');
    const candidateV4 = /^\d+\.\d+\.\d+\.\d+$/.test(candidate);
    if (!candidateV4 && !/^[0-9a-f:]+$/i.test(candidate)) return false;
    if (candidateV4 !== v4) return false;
    return list.check(candidate, v4 ? 'ipv4' : 'ipv6');
  });
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
function inWindowRef(w: (typeof TIMES)[number], now: Date): boolean {
  const local = new Date(now.toLocaleString('en-US', { timeZone: w.timeZone ?? 'UTC' }));
  const minute = local.getHours() * 60 + local.getMinutes();
  const day = local.getDay();
  const [fh, fm] = w.from.split(':').map(Number) as [number, number];
  const [th, tm] = w.to.split(':').map(Number) as [number, number];
  const from = fh * 60 + fm;
  const to = th * 60 + tm;
  const listed = (d: number) => w.days === undefined || w.days.includes(DAYS[d] as string);
  if (from < to) return listed(day) && minute >= from && minute < to;
  // Crossing midnight: the part after midnight belongs to the day the window started on.
  return minute >= from ? listed(day) : minute < to && listed((day + 6) % 7);
}

function ruleMatches(rule: Rule, r: AuthzRequest): boolean {
  const peer = r.peerId?.toString();
  const { from, to, when } = rule;
  if (from !== undefined) {
    if (peer === undefined) return false;
    if (from.ids && !idMatchesRef(from.ids, peer)) return false;
    if (from.notIds && idMatchesRef(from.notIds, peer)) return false;
    const m = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/[^/]+$/.exec(peer);
    if (from.namespaces && (m === null || !from.namespaces.includes(m[1] as string))) return false;
    if (from.trustDomains && !from.trustDomains.includes(peer.split('/')[2] as string)) return false;
  }
  if (to?.methods && !to.methods.includes(r.method)) return false;
  if (to?.paths && !to.paths.some((p) => pathMatchesRef(p, r.path))) return false;
  if (to?.hosts && !to.hosts.some((h) => hostRef(h) === hostRef(r.host))) return false;
  if (to?.ports && !to.ports.includes(r.port)) return false;
  if (when?.headers) {
    for (const [name, allowed] of Object.entries(when.headers)) {
      const h = r.headers as ReadonlyMap<string, readonly string[]> | Record<string, string | string[]>;
      const raw = h instanceof Map ? h.get(name.toLowerCase()) : (h as Record<string, unknown>)[name.toLowerCase()];
      const values = raw === undefined ? undefined : typeof raw === 'string' ? [raw] : (raw as string[]);
      if (!headerRef(values, allowed, rule.action === 'allow')) return false;
    }
  }
  if (when?.user) {
    const u = r.user;
    if (u === undefined) return false;
    for (const field of ['sub', 'iss', 'client_id'] as const) {
      const wanted = when.user[field];
      if (wanted && !(typeof u[field] === 'string' && wanted.includes(u[field] as string))) return false;
    }
    if (when.user.scope && !when.user.scope.every((s) => tokens(u.scope).includes(s))) return false;
    if (when.user.groups && !when.user.groups.some((g) => tokens(u.groups).includes(g))) return false;
  }
  if (when?.sourceIps && !ipRef(when.sourceIps, r.sourceIp)) return false;
  if (when?.time) {
    const windows = (Array.isArray(when.time) ? when.time : [when.time]) as (typeof TIMES)[number][];
    if (!windows.some((w) => inWindowRef(w, r.now))) return false;
  }
  if (when?.chain) {
    if (peer === undefined) return false;
    const hops = [...(r.chain ?? []), peer];
    if (when.chain.includes && !hops.some((h) => idMatchesRef(when.chain?.includes ?? [], h))) return false;
    if (when.chain.startsWith !== undefined) {
      const firsts = typeof when.chain.startsWith === 'string' ? [when.chain.startsWith] : when.chain.startsWith;
      if (!idMatchesRef(firsts, hops[0] as string)) return false;
    }
  }
  return true;
}

function referenceDecide(doc: Doc, r: AuthzRequest): { decision: string; rule: string } {
  const deny = doc.rules.find((rule) => rule.action === 'deny' && ruleMatches(rule, r));
  if (deny) return { decision: 'deny', rule: deny.name };
  const allow = doc.rules.find((rule) => rule.action === 'allow' && ruleMatches(rule, r));
  if (allow) return { decision: 'allow', rule: allow.name };
  return { decision: 'deny', rule: 'default-deny' };
}

describe('compilePolicy + decide (property)', () => {
  it(
    'ok/decide and explain equal the naive reference for random policies and requests',
    () => {
      fc.assert(
        fc.property(documentArb, fc.array(requestArb, { minLength: 1, maxLength: 12 }), (raw, specs) => {
          const doc = policySchema.parse(raw);
          const policy = compilePolicy(doc);
          const mode = doc.mode ?? 'enforce';
          // Every request twice: the second answer comes from the peer/method caches the first one filled.
          for (const spec of [...specs, ...specs]) {
            const request = toRequest(spec);
            const expected = referenceDecide(doc, request);
            const actual = decide(policy, request);
            expect({ decision: actual.decision, rule: actual.rule }).toEqual(expected);
            expect(actual.mode).toBe(mode);
            expect(actual.enforced).toBe(mode === 'enforce');
            const explained = explain(policy, request);
            expect({ decision: explained.decision, rule: explained.rule }).toEqual(expected);
          }
        }),
        fuzzParams(RUNS),
      );
    },
    fuzzTimeout(RUNS, 5),
  );
});
