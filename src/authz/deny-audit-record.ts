// The audit log line for a deny (every deny is one JSON audit log line). Pure: builds the object, the
// sidecar logs it with `logger.info(record, 'authz deny')`. Values are truncated so a line stays bounded.
import type { AuthzRequest } from './authz-request.js';
import type { Decision } from './policy/decision.js';
import { AMBIGUOUS_PATH_RULE } from './policy/reserved-rules.js';

export interface DenyAuditRecord {
  readonly event: 'authz_deny';
  /** The mTLS peer's SPIFFE ID; empty for a request from the external listener (no peer). */
  readonly peerId: string;
  readonly method: string;
  /** The normalized path (what policy saw and what the app would have received). */
  readonly path: string;
  readonly userSub?: string;
  readonly rule: string;
  readonly mode: Decision['mode'];
  /** False in audit mode: the request was let through. */
  readonly enforced: boolean;
}

const MAX_PATH = 1024;
const MAX_SUB = 256;

export function denyAuditRecord(request: AuthzRequest, decision: Decision): DenyAuditRecord {
  return auditRecord(request, request.path, decision.rule, decision.mode, decision.enforced);
}

/**
 * The audit line of a request refused before the policy ran because its path could be read two ways (the app and
 * the policy might see different paths): a deny like any other, so it has its line; `path` is the target as received.
 */
export function ambiguousPathAuditRecord(
  request: Pick<AuthzRequest, 'peerId' | 'method' | 'user'>,
  target: string,
): DenyAuditRecord {
  return auditRecord(request, target, AMBIGUOUS_PATH_RULE, 'enforce', true);
}

function auditRecord(
  request: Pick<AuthzRequest, 'peerId' | 'method' | 'user'>,
  path: string,
  rule: string,
  mode: Decision['mode'],
  enforced: boolean,
): DenyAuditRecord {
  const sub = request.user?.sub;
  return {
    event: 'authz_deny',
    peerId: request.peerId?.toString() ?? '',
    method: request.method,
    path: truncate(path, MAX_PATH),
    ...(typeof sub === 'string' ? { userSub: truncate(sub, MAX_SUB) } : {}),
    rule,
    mode,
    enforced,
  };
}

function truncate(value: string, max: number): string {
  return value.length > max ? `${value.slice(0, max)}…` : value;
}
