// Adversarial review of src/authz, including the bypasses of published proxy CVEs: every request runs through the same
// steps as the sidecar (normalizePath → decide) so a bypass shows up as an allow the policy did not mean.
// `fail/…` rows are requests that must not get through (400 or deny); `ok/…` rows must keep working.
import { describe, expect, it } from 'vitest';
import type { AuthzRequest, AuthzUser } from '../../../src/authz/authz-request.js';
import { decide } from '../../../src/authz/decide.js';
import { normalizePath } from '../../../src/authz/path-normalize.js';
import { headerNameError } from '../../../src/authz/policy/match-headers.js';
import { parsePolicy } from '../../../src/authz/policy/parse-policy.js';
import { isMeshauthError } from '../../../src/errors/index.js';
import { FRONTEND, ORDERS, policyOf, request } from '../authz/authz-fixtures.js';

const HEAD = 'apiVersion: meshauth.dev/v1\nkind: Policy\n';

/** What the sidecar does with a raw request-target: 'reject' (400) or the decision on the normalized path. */
function outcome(policy: ReturnType<typeof policyOf>, target: string, init: Partial<AuthzRequest> = {}): string {
  let path: string;
  try {
    path = normalizePath(target).path;
  } catch (error) {
    if (isMeshauthError(error, 'MESHAUTH_ERR_PATH_AMBIGUOUS')) return 'reject';
    throw error;
  }
  return decide(policy, request({ path, ...init })).decision;
}

function policyProblems(text: string): string {
  try {
    parsePolicy(text, 'p.yaml');
    return '';
  } catch (error) {
    return (error as Error).message;
  }
}

describe('review/authz: path tricks against "allow /public/*, deny /admin and /admin/*"', () => {
  const policy = policyOf([
    { name: 'public', action: 'allow', to: { paths: ['/public/*'] } },
    { name: 'admin', action: 'deny', to: { paths: ['/admin', '/admin/*'] } },
  ]);
  const table: ReadonlyArray<readonly [name: string, target: string, expected: 'allow' | 'deny' | 'reject']> = [
    ['ok/public', '/public/x', 'allow'],
    // Decoded once only, and refused: an app that decodes once more reads %2e%2e, which its URL parser resolves.
    ['fail/public-double-encoded-dots', '/public/%252e%252e/admin', 'reject'],
    ['ok/public-triple-encoded-dots-stay-literal', '/public/%25252e%25252e/admin', 'allow'],
    ['fail/encoded-dots-mixed-case-hex', '/public/%2E%2e/admin', 'deny'],
    ['fail/half-encoded-dots', '/public/.%2e/admin', 'deny'],
    ['fail/encoded-letters-of-admin', '/public/../%61%64%6D%69%6E', 'deny'],
    ['fail/iis-unicode-escape', '/public/%u002e%u002e/admin', 'reject'],
    ['fail/tomcat-dotdot-semicolon', '/public/..;/admin', 'reject'],
    ['ok/encoded-semicolon-is-a-literal-segment', '/public/..%3B/admin', 'allow'],
    ['fail/overlong-utf8-dots', '/public/%c0%ae%c0%ae/admin', 'reject'],
    ['fail/overlong-utf8-dots-upper', '/public/%C0%AE%C0%AE/admin', 'reject'],
    ['fail/overlong-utf8-slash', '/public/..%c0%afadmin', 'reject'],
    ['fail/overlong-utf8-backslash', '/public/..%c1%9cadmin', 'reject'],
    ['fail/three-byte-overlong-dot', '/public/%e0%80%ae%e0%80%ae/admin', 'reject'],
    ['fail/lone-continuation-byte', '/public/%80', 'reject'],
    ['fail/truncated-utf8-sequence', '/public/%E2%82', 'reject'],
    ['fail/utf16-surrogate-in-utf8', '/public/%ED%A0%80', 'reject'],
    ['ok/valid-utf8-escape-kept', '/public/caf%C3%A9', 'allow'],
    ['ok/valid-4-byte-utf8-escape-kept', '/public/%F0%9F%98%80', 'allow'],
    ['ok/fullwidth-solidus-is-not-a-slash', '/public/..%EF%BC%8Fadmin', 'allow'],
    ['fail/double-slash', '//admin', 'deny'],
    ['fail/trailing-slash', '/admin/', 'deny'],
    ['fail/trailing-dot-segment', '/admin/.', 'deny'],
    ['fail/backslash', '/public\\..\\admin', 'reject'],
    ['fail/fragment', '/public/#/../../admin', 'reject'],
    ['fail/absolute-form', 'http://x/admin', 'reject'],
  ];
  it.each(table)('%s', (_name, target, expected) => {
    expect(outcome(policy, target)).toBe(expected);
  });

  it('ok/what is forwarded is exactly what policy saw (no second decoding step can change it)', () => {
    for (const [, target] of table) {
      let normalized: string;
      try {
        normalized = normalizePath(target).target;
      } catch {
        continue;
      }
      expect(normalizePath(normalized).target).toBe(normalized);
    }
  });
});

describe('review/authz: the policy language refuses what the engine cannot enforce', () => {
  it('fail/a header named __proto__ is an error, not silently dropped (it would widen an allow rule)', () => {
    const text = `${HEAD}rules:\n  - name: r\n    action: allow\n    when:\n      headers:\n        x-tenant: [a]\n        __proto__: [b]\n`;
    expect(policyProblems(text)).toMatch(/__proto__|header/);
    expect(headerNameError('__proto__')).toBeDefined();
  });

  it.each([
    ['fail/x-forwarded-client-cert', 'x-forwarded-client-cert'],
    ['fail/X-Forwarded-Client-Cert', 'X-Forwarded-Client-Cert'],
    ['fail/x-meshauth-user', 'x-meshauth-user'],
    ['fail/x-meshauth-passport', 'X-MESHAUTH-PASSPORT'],
  ])('%s: identity headers are set by the sidecar and spoofable before it: never a condition', (_n, name) => {
    const text = `${HEAD}rules:\n  - name: r\n    action: allow\n    when:\n      headers:\n        ${name}: [x]\n`;
    expect(policyProblems(text)).toContain('when.headers');
  });

  it('ok/ordinary header names stay allowed', () => {
    expect(headerNameError('x-tenant')).toBeUndefined();
    expect(headerNameError('X-Meshauth')).toBeUndefined();
  });

  it('fail/unknown matcher keys (misspelt or prototype names) are errors', () => {
    for (const field of ['notPath: [/a]', 'path: [/a]', '__proto__: { paths: [/a] }']) {
      const text = `${HEAD}rules:\n  - name: r\n    action: allow\n    to:\n      ${field}\n`;
      expect(policyProblems(text), field).not.toBe('');
    }
  });
});

describe('review/authz: regression table for correct behaviour', () => {
  it('ok/deny wins in audit mode too, and audit mode never enforces', () => {
    const policy = policyOf(
      [
        { name: 'all', action: 'allow' },
        { name: 'no-admin', action: 'deny', to: { paths: ['/admin'] } },
      ],
      { mode: 'audit' },
    );
    const d = decide(policy, request({ path: '/admin' }));
    expect(d).toMatchObject({ decision: 'deny', rule: 'no-admin', enforced: false, mode: 'audit' });
    expect(decide(policy, request({ path: '/x' })).enforced).toBe(false);
  });

  it('fail/ID prefix is per segment: …/ns/a/* does not cover …/ns/ab/… or …/ns/a (index and matcher agree)', () => {
    const policy = policyOf([{ name: 'ns-a', action: 'allow', from: { ids: ['spiffe://example.org/ns/a/*'] } }]);
    const at = (peer: string) => decide(policy, request({ peer })).decision;
    expect(at('spiffe://example.org/ns/a/sa/x')).toBe('allow');
    expect(at('spiffe://example.org/ns/ab/sa/x')).toBe('deny');
    expect(at('spiffe://example.org/ns/a')).toBe('deny');
    expect(at('spiffe://example.org.evil/ns/a/sa/x')).toBe('deny');
  });

  it('fail/a deny rule indexed by ID prefix still applies to every peer under it', () => {
    const policy = policyOf([
      { name: 'all', action: 'allow' },
      { name: 'no-ns-a', action: 'deny', from: { ids: ['spiffe://example.org/ns/a/*'] } },
    ]);
    expect(decide(policy, request({ peer: 'spiffe://example.org/ns/a/sa/x' })).rule).toBe('no-ns-a');
    expect(decide(policy, request({ peer: 'spiffe://example.org/ns/a/sa/x/y' })).rule).toBe('no-ns-a');
    expect(decide(policy, request({ peer: FRONTEND })).rule).toBe('all');
  });

  it.each([
    ['fail/host-upper-case', 'ADMIN.svc'],
    ['fail/host-port', 'admin.svc:8080'],
    ['fail/host-trailing-dot', 'admin.svc.'],
    ['fail/host-trailing-dot-port', 'Admin.Svc.:443'],
  ])('%s: a deny on a host cannot be dodged by spelling (CVE-2021-39155)', (_n, host) => {
    const policy = policyOf([
      { name: 'all', action: 'allow' },
      { name: 'no-admin-host', action: 'deny', to: { hosts: ['admin.svc'] } },
    ]);
    expect(decide(policy, request({ host })).rule).toBe('no-admin-host');
  });

  it('fail/I09: a denied header value hidden behind a duplicate or a comma still triggers the deny', () => {
    const policy = policyOf([
      { name: 'all', action: 'allow' },
      { name: 'no-debug', action: 'deny', when: { headers: { 'X-Debug': ['1'] } } },
    ]);
    for (const values of [['0', '1'], ['0,1'], ['0 , 1'], ['1']]) {
      const headers = new Map([['x-debug', values]]);
      expect(decide(policy, request({ headers })).rule, values.join('|')).toBe('no-debug');
    }
  });

  it('fail/header records are read by own property: a prototype key is never a header', () => {
    const policy = policyOf([{ name: 'r', action: 'allow', when: { headers: { constructor: ['x'] } } }]);
    expect(decide(policy, request({ headers: {} })).decision).toBe('deny');
  });

  it.each([
    ['fail/sub-as-number', { sub: 42 }, 'sub', ['42']],
    ['fail/client_id-as-array', { client_id: ['web'] }, 'client_id', ['web']],
    ['fail/scope-joined-in-one-array-element', { scope: ['read admin'] }, 'scope', ['admin']],
    ['fail/scope-tab-separated', { scope: 'read\tadmin' }, 'scope', ['admin']],
    ['fail/groups-comma-string', { groups: 'staff,admins' }, 'groups', ['admins']],
    ['fail/groups-object', { groups: { admins: true } }, 'groups', ['admins']],
  ])('%s: type confusion never satisfies an allow', (_n, user, field, wanted) => {
    const policy = policyOf([{ name: 'r', action: 'allow', when: { user: { [field]: wanted } } }]);
    const claims = { sub: 'alice', ...user } as unknown as AuthzUser;
    expect(decide(policy, request({ user: claims })).decision).toBe('deny');
  });

  it.each([
    ['ok/v4-mapped-peer-hits-v4-deny', '::ffff:10.9.9.9', 'no-10'],
    ['ok/v4-mapped-hex-form-hits-v4-deny', '::ffff:a09:909', 'no-10'],
    ['ok/zone-id-ignored', 'fe80::1%lo0', 'all'],
    ['ok/outside', '11.0.0.1', 'all'],
  ])('%s: sourceIps deny rules see through address spellings', (_n, sourceIp, rule) => {
    const policy = policyOf([
      { name: 'all', action: 'allow' },
      { name: 'no-10', action: 'deny', when: { sourceIps: ['10.0.0.0/8'] } },
    ]);
    expect(decide(policy, request({ sourceIp })).rule).toBe(rule);
  });

  it.each([
    ['ok/sunday-23:59', '2026-03-08T23:59:00Z', 'maint'],
    ['ok/monday-00:00-belongs-to-sunday-window', '2026-03-09T00:00:00Z', 'maint'],
    ['ok/monday-00:59', '2026-03-09T00:59:00Z', 'maint'],
    ['fail/monday-01:00-end-exclusive', '2026-03-09T01:00:00Z', 'all'],
    ['fail/saturday-23:30-not-listed', '2026-03-07T23:30:00Z', 'all'],
    ['fail/sunday-00:30-belongs-to-saturday', '2026-03-08T00:30:00Z', 'all'],
  ])('%s: a deny window across midnight', (_n, at, rule) => {
    const policy = policyOf([
      { name: 'all', action: 'allow' },
      { name: 'maint', action: 'deny', when: { time: { days: ['Sun'], from: '23:00', to: '01:00' } } },
    ]);
    expect(decide(policy, request({ now: new Date(at) })).rule).toBe(rule);
  });

  it('ok/DST: a Berlin window follows local time across the spring-forward gap', () => {
    const policy = policyOf([
      { name: 'night', action: 'allow', when: { time: { from: '02:00', to: '04:00', timeZone: 'Europe/Berlin' } } },
    ]);
    // 2026-03-29: 02:00 CET jumps to 03:00 CEST. 00:59Z = 01:59 CET (out), 01:00Z = 03:00 CEST (in).
    expect(decide(policy, request({ now: new Date('2026-03-29T00:59:00Z') })).decision).toBe('deny');
    expect(decide(policy, request({ now: new Date('2026-03-29T01:00:00Z') })).decision).toBe('allow');
    expect(decide(policy, request({ now: new Date('2026-03-29T02:00:00Z') })).decision).toBe('deny');
  });

  it('ok/methods: a rule for GET covers HEAD (a HEAD runs the GET handler) but not OPTIONS, and unnamed methods only see method-free rules', () => {
    const policy = policyOf([
      { name: 'get', action: 'allow', to: { methods: ['GET'] } },
      { name: 'no-orders', action: 'deny', from: { ids: [ORDERS] } },
    ]);
    expect(decide(policy, request({ method: 'HEAD' })).rule).toBe('get');
    expect(decide(policy, request({ method: 'OPTIONS' })).decision).toBe('deny');
    expect(decide(policy, request({ peer: ORDERS, method: 'PURGE' })).rule).toBe('no-orders');
    expect(decide(policy, request({ peer: ORDERS, method: 'GET' })).rule).toBe('no-orders');
  });
});
