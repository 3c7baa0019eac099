// The Kubernetes TokenReview exchange (authentication.k8s.io/v1), pure: the request body the CA sends and the
// verdict it draws from the API server's answer. The API server checks what offline verification cannot: that the
// pod (and secret) the token is bound to still exists, so a deleted pod's token stops working at once.
// Fields: `spec.token`, `spec.audiences`; `status.authenticated`, `status.user.username`
// (`system:serviceaccount:<ns>:<name>`), `status.user.extra["authentication.kubernetes.io/pod-uid"]`,
// `status.audiences`, `status.error`.

export const TOKEN_REVIEW_PATH = '/apis/authentication.k8s.io/v1/tokenreviews';
const POD_UID_EXTRA = 'authentication.kubernetes.io/pod-uid';

export interface TokenReviewExpectation {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly audience: string;
  /** `kubernetes.io.pod.uid` of the verified token, when it is bound to a pod. */
  readonly podUid?: string;
}

/** Why an answer denies the token: the API server's own no, or no confirmation of the audience the CA asked for. */
export type TokenReviewDenial = 'sa_token_review_denied' | 'sa_token_review_audience';

export type TokenReviewVerdict =
  | { readonly ok: true }
  /**
   * The API server answered and says no: the token is not (or no longer) valid for this identity and audience.
   * `unauthenticated`: its own no (`status.authenticated` false), about the token itself, as opposed to an answer
   * the CA refuses (no audience confirmed, another user or pod), which a fix on the cluster's side can change.
   */
  | {
      readonly ok: false;
      readonly denied: true;
      readonly reason: TokenReviewDenial;
      readonly why: string;
      readonly unauthenticated?: true;
    }
  /** The answer is not a TokenReview at all: the CA cannot judge the token. */
  | { readonly ok: false; readonly denied: false; readonly why: string };

export function tokenReviewRequest(token: string, audience: string): unknown {
  return {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenReview',
    spec: { token, audiences: [audience] },
  };
}

/** Judges an answer of status 200/201. Everything the API server writes is compared exactly; nothing is assumed. */
export function judgeTokenReview(body: unknown, expected: TokenReviewExpectation): TokenReviewVerdict {
  if (!isRecord(body) || body.kind !== 'TokenReview' || !isRecord(body.status)) {
    return { ok: false, denied: false, why: 'answer is not a TokenReview with a status' };
  }
  const status = body.status;
  if (status.authenticated !== true) {
    const error = typeof status.error === 'string' ? status.error.slice(0, 300) : 'not authenticated';
    return {
      ok: false,
      denied: true,
      reason: 'sa_token_review_denied',
      why: `API server: ${error}`,
      unauthenticated: true,
    };
  }
  const user = isRecord(status.user) ? status.user : {};
  const username = `system:serviceaccount:${expected.namespace}:${expected.serviceAccount}`;
  if (user.username !== username) {
    return {
      ok: false,
      denied: true,
      reason: 'sa_token_review_denied',
      why: 'API server authenticated the token as another user',
    };
  }
  // The API server intersects the requested audiences with the token's and returns the intersection. An answer
  // without it is from an authenticator that ignored spec.audiences: it says the token is valid for the API server,
  // not that it is valid for us, so it is refused like a wrong audience.
  if (!Array.isArray(status.audiences)) {
    return {
      ok: false,
      denied: true,
      reason: 'sa_token_review_audience',
      why: 'API server did not return status.audiences (not audience-aware)',
    };
  }
  if (!status.audiences.includes(expected.audience)) {
    return {
      ok: false,
      denied: true,
      reason: 'sa_token_review_audience',
      why: 'API server did not confirm the audience',
    };
  }
  // `extra` maps names to arrays of strings. In another shape the answer is no TokenReview: skipping the pod check
  // because of it would pass a token the API server bound to another pod.
  if (user.extra !== undefined && !isRecord(user.extra)) {
    return { ok: false, denied: false, why: 'status.user.extra is not an object' };
  }
  const podUids = user.extra?.[POD_UID_EXTRA];
  if (podUids !== undefined && !(Array.isArray(podUids) && podUids.every((uid) => typeof uid === 'string'))) {
    return { ok: false, denied: false, why: `status.user.extra["${POD_UID_EXTRA}"] is not a list of strings` };
  }
  if (expected.podUid === undefined) return { ok: true };
  // The API server's service-account authenticator returns the pod UID of every pod-bound token it accepts (and
  // only then checks that pod still exists). An answer without it did not come from that check, or the token is
  // not bound as its claim says: nothing confirms the pod is alive, so it is refused like another pod's.
  if (podUids === undefined || !podUids.includes(expected.podUid)) {
    return {
      ok: false,
      denied: true,
      reason: 'sa_token_review_denied',
      why: Array.isArray(podUids)
        ? 'API server bound the token to another pod'
        : 'API server did not confirm the pod the token is bound to',
    };
  }
  return { ok: true };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
