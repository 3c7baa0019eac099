import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../../src/authz/policy/parse-policy.js';
import { policyProblems } from '../../helpers/policy-problems.js';

const HEAD = 'apiVersion: meshauth.dev/v1\nkind: Policy\n';

describe('parsePolicy', () => {
  it('fail/a wrong type is worded as config files word it: what is accepted, and the value given', () => {
    const found = policyProblems(
      `${HEAD}rules:\n  - name: r\n    action: allow\n    from: { ids: "spiffe://example.org/ns/a/sa/b" }\n    to: { ports: ["80"] }\n`,
    );
    expect(found.map((p) => `${p.field}: ${p.message}`)).toEqual([
      'from.ids: expected a list (YAML [a, b] or one item per "- " line), not the text "spiffe://example.org/ns/a/sa/b"',
      'to.ports[0]: expected a number from 1 to 65535, not the text "80" (write it without quotes)',
    ]);
  });

  it('ok/the SPEC §6 example', () => {
    const doc = parsePolicy(
      `${HEAD}rules:
  - name: orders-read
    action: allow
    from: { ids: ["spiffe://example.org/ns/shop/sa/frontend"], namespaces: ["shop"] }
    to:   { methods: [GET], paths: ["/orders/*"] }
    when: { user: { scope: ["orders:read"] } }
`,
      'p.yaml',
    );
    expect(doc.rules).toHaveLength(1);
    // Validation does not default: mode stays absent until compile.
    expect(doc.mode).toBeUndefined();
  });

  it('ok/every field', () => {
    const doc = parsePolicy(
      `${HEAD}metadata: { name: shop }
mode: audit
exposeRuleNames: true
rules:
  - name: everything.v1_x-y
    action: deny
    from: { ids: ["spiffe://td/ns/a/*"], notIds: ["spiffe://td/ns/a/sa/b"], namespaces: [a], trustDomains: [td] }
    to: { methods: [GET, POST], paths: ["/x", "/y/*", "/u/{id}"], hosts: [Orders.Shop.svc], ports: [8080] }
    when:
      user: { sub: [alice], iss: ["https://idp"], scope: ["a:b"], groups: [ops], client_id: [web] }
      headers: { X-Role: [user, viewer] }
      sourceIps: ["10.0.0.0/8", "fd00::/8"]
      time: [{ days: [Mon, Fri], from: "09:00", to: "17:00", timeZone: Europe/Berlin }, { from: "22:00", to: "02:00" }]
      chain: { includes: ["spiffe://td/ns/edge/sa/gateway"], startsWith: "spiffe://td/ns/edge/*" }
`,
      'p.yaml',
    );
    expect(doc.rules[0]?.name).toBe('everything.v1_x-y');
  });

  // Found by the policy property test: `days: [Sat, Sun], 00:00–24:00` ("weekends") was refused as a full day.
  it('ok/a whole-day window on named days', () => {
    const doc = parsePolicy(
      `${HEAD}rules: [{ name: r, action: allow, when: { time: { days: [Sat, Sun], from: "00:00", to: "24:00" } } }]\n`,
      'p.yaml',
    );
    expect(doc.rules[0]?.when?.time).toEqual({ days: ['Sat', 'Sun'], from: '00:00', to: '24:00' });
  });

  it('ok/empty rule list is valid (it denies everything)', () => {
    expect(parsePolicy(`${HEAD}rules: []\n`, 'p.yaml').rules).toEqual([]);
  });

  it('fail/unknown key in a rule names file, rule and field', () => {
    const [p] = policyProblems(`${HEAD}rules:\n  - name: r1\n    action: allow\n    to: { path: ["/x"] }\n`);
    expect(p).toEqual({ rule: 'rules[0] "r1"', field: 'to', message: 'unknown field "path" (did you mean "paths"?)' });
  });

  it('fail/the message names the file, rule and field', () => {
    try {
      parsePolicy(`${HEAD}rules:\n  - name: r1\n    action: allow\n    to: { paths: ["orders"] }\n`, 'shop.yaml');
      expect.unreachable();
    } catch (error) {
      expect((error as Error).message).toContain(
        'shop.yaml: rules[0] "r1" to.paths[0]: expected a path starting with "/"',
      );
    }
  });

  it.each([
    ['fail/wrong-apiVersion', 'apiVersion: meshauth.dev/v2\nkind: Policy\nrules: []\n', '', 'apiVersion'],
    ['fail/unknown-top-level', `${HEAD}rules: []\nrule: []\n`, '', ''],
    ['fail/missing-rules', HEAD, '', 'rules'],
    ['fail/bad-mode', `${HEAD}mode: permissive\nrules: []\n`, '', 'mode'],
    ['fail/bad-action', `${HEAD}rules: [{ name: r, action: permit }]\n`, 'rules[0] "r"', 'action'],
    ['fail/bad-name', `${HEAD}rules: [{ name: "a b", action: allow }]\n`, 'rules[0] "a b"', 'name'],
    [
      'fail/reserved-name',
      `${HEAD}rules: [{ name: default-deny, action: allow }]\n`,
      'rules[0] "default-deny"',
      'name',
    ],
    [
      'fail/bad-id',
      `${HEAD}rules: [{ name: r, action: allow, from: { ids: ["spiffe://td/ns/a*"] } }]\n`,
      'rules[0] "r"',
      'from.ids[0]',
    ],
    ['fail/empty-list', `${HEAD}rules: [{ name: r, action: allow, from: { ids: [] } }]\n`, 'rules[0] "r"', 'from.ids'],
    [
      'fail/lower-method',
      `${HEAD}rules: [{ name: r, action: allow, to: { methods: [get] } }]\n`,
      'rules[0] "r"',
      'to.methods[0]',
    ],
    [
      'fail/port-range',
      `${HEAD}rules: [{ name: r, action: allow, to: { ports: [70000] } }]\n`,
      'rules[0] "r"',
      'to.ports[0]',
    ],
    [
      'fail/cidr',
      `${HEAD}rules: [{ name: r, action: allow, when: { sourceIps: ["10.0.0.1/8"] } }]\n`,
      'rules[0] "r"',
      'when.sourceIps[0]',
    ],
    [
      'fail/time-zone',
      `${HEAD}rules: [{ name: r, action: allow, when: { time: { from: "09:00", to: "10:00", timeZone: Mars/Olympus } } }]\n`,
      'rules[0] "r"',
      'when.time.timeZone',
    ],
    [
      'fail/time-day',
      `${HEAD}rules: [{ name: r, action: allow, when: { time: { days: [Monday], from: "09:00", to: "10:00" } } }]\n`,
      'rules[0] "r"',
      'when.time.days[0]',
    ],
    [
      'fail/time-empty-window',
      `${HEAD}rules: [{ name: r, action: allow, when: { time: { from: "09:00", to: "09:00" } } }]\n`,
      'rules[0] "r"',
      'when.time.to',
    ],
    [
      'fail/time-full-day-every-day',
      `${HEAD}rules: [{ name: r, action: allow, when: { time: { from: "00:00", to: "24:00" } } }]\n`,
      'rules[0] "r"',
      'when.time.to',
    ],
    [
      'fail/header-name',
      `${HEAD}rules: [{ name: r, action: allow, when: { headers: { "x role": [a] } } }]\n`,
      'rules[0] "r"',
      'when.headers["x role"]',
    ],
    [
      'fail/chain-empty',
      `${HEAD}rules: [{ name: r, action: allow, when: { chain: {} } }]\n`,
      'rules[0] "r"',
      'when.chain',
    ],
    [
      'fail/user-unknown-claim',
      `${HEAD}rules: [{ name: r, action: allow, when: { user: { role: [x] } } }]\n`,
      'rules[0] "r"',
      'when.user',
    ],
    [
      'fail/host-with-port',
      `${HEAD}rules: [{ name: r, action: allow, to: { hosts: ["a.svc:80"] } }]\n`,
      'rules[0] "r"',
      'to.hosts[0]',
    ],
  ])('%s', (_name, text, rule, field) => {
    const found = policyProblems(text);
    expect(found.some((p) => p.rule === rule && p.field === field)).toBe(true);
  });

  it('fail/duplicate rule names', () => {
    const found = policyProblems(`${HEAD}rules: [{ name: r, action: allow }, { name: r, action: deny }]\n`);
    expect(found).toEqual([{ rule: 'rules[1] "r"', field: 'name', message: 'duplicate rule name "r"' }]);
  });

  it('fail/every problem is reported, not only the first', () => {
    const found = policyProblems(
      `${HEAD}rules: [{ name: a, action: x }, { name: b, action: allow, to: { paths: [x] } }]\n`,
    );
    expect(found.map((p) => p.rule)).toEqual(['rules[0] "a"', 'rules[1] "b"']);
  });

  it('fail/YAML syntax error and duplicate keys', () => {
    expect(policyProblems(`${HEAD}rules: [\n`)[0]?.message).toMatch(/^YAML/);
    expect(policyProblems(`${HEAD}rules: []\nrules: []\n`)[0]?.message).toMatch(/^YAML/);
  });

  it('fail/an unresolved tag and an alias without its anchor are policy errors, not values loaded anyway', () => {
    expect(policyProblems(`${HEAD}mode: !nonsense allow\nrules: []\n`)[0]?.message).toMatch(/^YAML line 3: /);
    expect(policyProblems(`${HEAD}rules: *nowhere\n`)[0]?.message).toMatch(/^YAML/);
  });

  it('fail/not a mapping', () => {
    expect(policyProblems('- a\n- b\n').length).toBeGreaterThan(0);
  });
});
