// What the sidecar would do with one described request: normalize and check it like the inbound listener, then
// explain the decision. Backs `meshauth policy test` (the Policy Administration Point's dry run). Pure.

import type { ErrorCode } from '../errors/index.js';
import { MeshauthError } from '../errors/index.js';
import { SpiffeId } from '../identity/index.js';
// The inbound's own header copy, so that the dry run reads what the live policy reads (one owner of those rules).
import {
  copyRequestHeaders,
  headerLinesByName,
  hostHeader,
  INBOUND_FORWARDER_POLICY,
  INBOUND_POLICY,
} from '../sidecar/http-headers.js';
import type { AuthzUser, MeshAuthzRequest } from './authz-request.js';
import { type Explanation, explain } from './decide-explain.js';
import { isHostPort } from './host-validate.js';
import { decideWithMethodOverride } from './method-override.js';
import { isForwardedMethod } from './method-validate.js';
import { type NormalizedTarget, normalizePath } from './path-normalize.js';
import type { CompiledPolicy } from './policy/compiled-policy.js';

export interface TestRequestInput {
  readonly from: string;
  readonly method: string;
  /** The raw request-target, as a client would send it. */
  readonly path: string;
  readonly host?: string | undefined;
  readonly port?: number | undefined;
  readonly user?: AuthzUser | undefined;
  /** Header name (any case) → values; each value is one header line. */
  readonly headers?: Readonly<Record<string, string | readonly string[]>> | undefined;
  readonly sourceIp?: string | undefined;
  readonly chain?: readonly string[] | undefined;
  /**
   * The caller is in the sidecar's `inbound.trustForwardedFrom`: its forwarding headers (X-Forwarded-*, Forwarded, …)
   * reach the app and the policy. Otherwise they are dropped, as the live sidecar drops them.
   */
  readonly trustedForwarder?: boolean | undefined;
  readonly now: Date;
}

export type TestOutcome =
  | {
      readonly kind: 'reject';
      readonly status: number;
      readonly code: ErrorCode;
      readonly reason: string | undefined;
      readonly message: string;
    }
  | { readonly kind: 'decision'; readonly request: MeshAuthzRequest; readonly explanation: Explanation };

/** Throws MESHAUTH_ERR_SPIFFE_ID_INVALID for a bad `from` or chain ID (bad input, not an outcome). */
export function evaluateTestRequest(policy: CompiledPolicy, input: TestRequestInput): TestOutcome {
  const peerId = SpiffeId.parse(input.from);
  for (const hop of input.chain ?? []) SpiffeId.parse(hop);
  let method: string;
  let normalized: NormalizedTarget;
  try {
    // The inbound's own method check, first of its head checks (pipeline/sinks.ts): `1GET` or CONNECT is a 400.
    if (!isForwardedMethod(input.method)) {
      throw new MeshauthError(
        'MESHAUTH_ERR_METHOD_INVALID',
        'request method must be one the sidecar forwards (an HTTP/1.1 parser knows it), not CONNECT',
        {
          reason: 'method',
        },
      );
    }
    method = input.method;
    // The inbound answers 400 for such a Host before any rule runs (request-checks.ts); without --host none is set.
    // Checked before the path, as the inbound does: its head checks run before the authorizer normalizes the path.
    if (input.host !== undefined && !isHostPort(input.host)) {
      throw new MeshauthError('MESHAUTH_ERR_BAD_REQUEST', 'Host is not host[:port]', { reason: 'host_invalid' });
    }
    normalized = normalizePath(input.path);
  } catch (error) {
    if (error instanceof MeshauthError) {
      return { kind: 'reject', status: error.status, code: error.code, reason: error.reason, message: error.message };
    }
    throw error;
  }
  const request: MeshAuthzRequest = {
    peerId,
    method,
    path: normalized.path,
    host: input.host ?? '',
    port: input.port ?? 0,
    headers: appHeaderLines(input),
    sourceIp: input.sourceIp ?? '',
    user: input.user,
    chain: input.chain,
    now: input.now,
  };
  // As the inbound decides: a POST with `?_method=DELETE` also as DELETE; a deny for it is reported with that method.
  const decided = decideWithMethodOverride(policy, request, normalized.query, explain);
  return { kind: 'decision', request: decided.request, explanation: decided.decision };
}

/**
 * The headers as the inbound's policy reads them: those the app would get (the inbound's own copy drops hop-by-hop
 * headers and those `Connection` names, names with `_`, method and path overrides), with the Host `--host` names.
 * An `Authorization` stays: whether the end-user step drops it before the app depends on the sidecar's config.
 * Forwarding headers (X-Forwarded-*, Forwarded, …) stay only for a caller in `inbound.trustForwardedFrom`
 * (`--trusted-forwarder`), as the live sidecar keeps them.
 */
function appHeaderLines(input: TestRequestInput): Map<string, string[]> {
  const received: string[] = [];
  for (const [name, value] of Object.entries(input.headers ?? {})) {
    for (const line of typeof value === 'string' ? [value] : value) received.push(name, line);
  }
  if (input.host !== undefined && hostHeader(received) === undefined) received.push('host', input.host);
  const copied: string[] = [];
  copyRequestHeaders(received, input.trustedForwarder === true ? INBOUND_FORWARDER_POLICY : INBOUND_POLICY, copied);
  return headerLinesByName(copied);
}
