// PDP benchmark (target: ≤ 10 µs median decision with 1,000 rules). Builds a realistic 1,000-rule policy (per-caller
// allow rules with paths, methods, scopes and chain conditions, namespace and prefix rules, global denies), then
// times decisions in batches with process.hrtime.bigint; per-decision figures are batch time / batch size.
// Runnable alone: `node dist/bench/pdp.js [--quick]`.
import { pathToFileURL } from 'node:url';
import { stringify } from 'yaml';
import type { AuthzRequest } from '../src/authz/authz-request.js';
import { decide } from '../src/authz/decide.js';
import { compilePolicy } from '../src/authz/policy/compile-policy.js';
import { parsePolicy } from '../src/authz/policy/parse-policy.js';
import { SpiffeId } from '../src/identity/index.js';

export interface PdpBenchResult {
  readonly name: string;
  readonly rules: number;
  readonly medianUs: number;
  readonly p99Us: number;
  readonly decisionsPerSec: number;
}

const TD = 'example.org';
const NAMESPACES = 20;
const SERVICES_PER_NAMESPACE = 12;
const GATEWAY = `spiffe://${TD}/ns/edge/sa/gateway`;
const BATCH = 1_000;

const id = (ns: number, sa: number): string => `spiffe://${TD}/ns/team-${ns}/sa/svc-${sa}`;

/** 1,000 rules: 4 per caller for 240 callers, plus namespace-wide, prefix and global rules. */
export function benchPolicyRules(): Record<string, unknown>[] {
  const rules: Record<string, unknown>[] = [
    { name: 'deny-admin', action: 'deny', to: { paths: ['/admin', '/admin/*'] } },
    { name: 'deny-debug', action: 'deny', when: { headers: { 'x-debug': ['1', 'true'] } } },
    { name: 'deny-other-td', action: 'deny', from: { notIds: [`spiffe://${TD}/*`] } },
    { name: 'health', action: 'allow', from: { trustDomains: [TD] }, to: { methods: ['GET'], paths: ['/healthz'] } },
  ];
  for (let ns = 0; ns < NAMESPACES; ns++) {
    for (let sa = 0; sa < SERVICES_PER_NAMESPACE; sa++) {
      const caller = id(ns, sa);
      const res = `/r${ns}-${sa}`;
      rules.push(
        {
          name: `read-${ns}-${sa}`,
          action: 'allow',
          from: { ids: [caller] },
          to: { methods: ['GET', 'HEAD'], paths: [`${res}/*`] },
        },
        {
          name: `write-${ns}-${sa}`,
          action: 'allow',
          from: { ids: [caller] },
          to: { methods: ['POST', 'PUT'], paths: [res] },
          when: { user: { scope: [`${res.slice(1)}:write`] } },
        },
        {
          name: `item-${ns}-${sa}`,
          action: 'allow',
          from: { ids: [caller] },
          to: { methods: ['PATCH'], paths: [`${res}/{id}/state`] },
          when: { chain: { includes: [GATEWAY] } },
        },
        {
          name: `nodelete-${ns}-${sa}`,
          action: 'deny',
          from: { ids: [caller] },
          to: { methods: ['DELETE'], paths: [`${res}/*`] },
        },
      );
    }
  }
  for (let ns = 0; rules.length < 1_000; ns = (ns + 1) % NAMESPACES) {
    const n = rules.length;
    rules.push(
      n % 2 === 0
        ? {
            name: `ns-${n}`,
            action: 'allow',
            from: { namespaces: [`team-${ns}`] },
            to: { methods: ['GET'], paths: [`/shared-${n}/*`] },
          }
        : {
            name: `prefix-${n}`,
            action: 'allow',
            from: { ids: [`spiffe://${TD}/ns/team-${ns}/*`] },
            to: { paths: [`/ops-${n}`] },
          },
    );
  }
  return rules;
}

function benchRequests(): AuthzRequest[] {
  const requests: AuthzRequest[] = [];
  const methods = ['GET', 'GET', 'GET', 'POST', 'PATCH', 'DELETE', 'OPTIONS'];
  const now = new Date('2026-03-04T10:00:00Z');
  for (let i = 0; i < 4_096; i++) {
    const ns = (i * 7) % NAMESPACES;
    const sa = (i * 13) % SERVICES_PER_NAMESPACE;
    const method = methods[i % methods.length] ?? 'GET';
    // Mostly the caller's own resources (allows), some others' (default deny), some admin (global deny).
    const target = i % 5 === 0 ? `/r${(ns + 1) % NAMESPACES}-${sa}/x` : i % 11 === 0 ? '/admin/users' : `/r${ns}-${sa}`;
    const path = method === 'PATCH' ? `${target}/42/state` : method === 'POST' ? target : `${target}/items/${i}`;
    requests.push({
      peerId: SpiffeId.parse(id(ns, sa)),
      method,
      path,
      host: 'svc.team.svc:8080',
      port: 8080,
      headers: new Map([['x-request-id', [String(i)]]]),
      sourceIp: '10.0.0.7',
      user: { sub: `user-${i}`, scope: `openid r${ns}-${sa}:write` },
      chain: [GATEWAY],
      now,
    });
  }
  return requests;
}

export async function benchPdp(options: { quick: boolean }): Promise<PdpBenchResult> {
  const rules = benchPolicyRules();
  const text = stringify({ apiVersion: 'meshauth.dev/v1', kind: 'Policy', rules });
  const policy = compilePolicy(parsePolicy(text, 'bench-policy.yaml'));
  const requests = benchRequests();
  const batches = options.quick ? 200 : 2_000;
  let sink = 0;
  // Warm-up: JIT and the per-peer/method index caches (the steady state of a long-running sidecar).
  for (let i = 0; i < 20_000; i++) sink += decide(policy, requests[i % requests.length] as AuthzRequest).rule.length;
  const perDecisionNs: number[] = [];
  let totalNs = 0n;
  let cursor = 0;
  for (let b = 0; b < batches; b++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < BATCH; i++) {
      sink += decide(policy, requests[cursor] as AuthzRequest).decision === 'allow' ? 1 : 0;
      cursor = (cursor + 1) & 4_095;
    }
    const elapsed = process.hrtime.bigint() - start;
    totalNs += elapsed;
    perDecisionNs.push(Number(elapsed) / BATCH);
    await Promise.resolve();
  }
  if (sink < 0) throw new Error('unreachable: keeps the loop from being optimized away');
  perDecisionNs.sort((a, b) => a - b);
  const at = (q: number): number =>
    perDecisionNs[Math.min(perDecisionNs.length - 1, Math.floor(q * perDecisionNs.length))] ?? 0;
  return {
    name: 'pdp-decide',
    rules: policy.rules.length,
    medianUs: round(at(0.5) / 1_000),
    p99Us: round(at(0.99) / 1_000),
    decisionsPerSec: Math.round((batches * BATCH) / (Number(totalNs) / 1e9)),
  };
}

function round(value: number): number {
  return Math.round(value * 1_000) / 1_000;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await benchPdp({ quick: process.argv.includes('--quick') });
  console.log(JSON.stringify(result));
}
