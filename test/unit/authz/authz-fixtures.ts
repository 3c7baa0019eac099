// Shared builders for the authz unit tests: a policy from a YAML string, a request with defaults.
import { stringify } from 'yaml';
import type { AuthzRequest } from '../../../src/authz/authz-request.js';
import { compilePolicy } from '../../../src/authz/policy/compile-policy.js';
import type { CompiledPolicy } from '../../../src/authz/policy/compiled-policy.js';
import { parsePolicy } from '../../../src/authz/policy/parse-policy.js';
import { SpiffeId } from '../../../src/identity/index.js';

export const FRONTEND = 'spiffe://example.org/ns/shop/sa/frontend';
export const GATEWAY = 'spiffe://example.org/ns/edge/sa/gateway';
export const ORDERS = 'spiffe://example.org/ns/shop/sa/orders';
export const OTHER_TD = 'spiffe://other.org/ns/shop/sa/frontend';

/** Compiles a policy from its rules (and optional top-level fields), through the real parser. */
export function policyOf(rules: readonly unknown[], top: Record<string, unknown> = {}): CompiledPolicy {
  const text = stringify({ apiVersion: 'meshauth.dev/v1', kind: 'Policy', ...top, rules });
  return compilePolicy(parsePolicy(text, 'test.yaml'));
}

export interface RequestInit extends Partial<Omit<AuthzRequest, 'peerId'>> {
  readonly peer?: string;
}

export function request(init: RequestInit = {}): AuthzRequest {
  const { peer = FRONTEND, ...rest } = init;
  return {
    peerId: SpiffeId.parse(peer),
    method: 'GET',
    path: '/',
    host: 'orders.shop.svc',
    port: 8080,
    headers: new Map(),
    sourceIp: '10.1.2.3',
    now: new Date('2026-03-04T10:00:00Z'), // a Wednesday
    ...rest,
  };
}
