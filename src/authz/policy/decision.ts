// The result of a policy decision. Types only.
export type PolicyMode = 'enforce' | 'audit';
export type RuleAction = 'allow' | 'deny';

export interface Decision {
  readonly decision: RuleAction;
  /** The deciding rule's name, or `default-deny` when no rule matched. A bounded metric label. */
  readonly rule: string;
  readonly mode: PolicyMode;
  /**
   * False in audit mode: the decision is reported (metrics, audit log) but the request passes. The sidecar
   * rejects exactly when `decision === 'deny' && enforced`.
   */
  readonly enforced: boolean;
  readonly reasons: readonly string[];
}
