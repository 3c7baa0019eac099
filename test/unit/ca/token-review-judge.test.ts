// judgeTokenReview: the verdict from an authentication.k8s.io/v1 TokenReview answer, field by field.
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_K8S_API_SERVER,
  DEFAULT_K8S_TOKEN_FILE,
  judgeTokenReview,
  tokenReviewRequest,
} from '../../../src/ca/index.js';
import { K8S_API_SERVER, K8S_TOKEN_FILE } from '../../../src/cli/ca.js';

const expected = { namespace: 'shop', serviceAccount: 'web', audience: 'meshauth', podUid: 'uid-1' };
const answer = (status: unknown) => ({
  kind: 'TokenReview',
  apiVersion: 'authentication.k8s.io/v1',
  metadata: { creationTimestamp: null },
  spec: { token: 't', audiences: ['meshauth'] },
  status,
});
const user = (username = 'system:serviceaccount:shop:web', podUid = 'uid-1') => ({
  username,
  uid: 'sa-uid',
  groups: ['system:serviceaccounts', 'system:serviceaccounts:shop', 'system:authenticated'],
  extra: { 'authentication.kubernetes.io/pod-name': ['web-0'], 'authentication.kubernetes.io/pod-uid': [podUid] },
});

describe('judgeTokenReview', () => {
  it.each([
    [
      'ok/authenticated as the token says, audience confirmed',
      answer({ authenticated: true, user: user(), audiences: ['meshauth'] }),
      'ok',
    ],
    [
      'fail/no audiences echoed (an authenticator that ignored spec.audiences)',
      answer({ authenticated: true, user: user() }),
      'audience',
    ],
    ['fail/audiences empty', answer({ authenticated: true, user: user(), audiences: [] }), 'audience'],
    ['fail/audiences a string', answer({ authenticated: true, user: user(), audiences: 'meshauth' }), 'audience'],
    [
      'fail/authenticated false with error',
      answer({ user: {}, error: '[invalid bearer token, pod "web-0" not found]' }),
      'denied',
    ],
    ['fail/authenticated missing', answer({ user: user(), audiences: ['meshauth'] }), 'denied'],
    [
      'fail/authenticated "true" (a string)',
      answer({ authenticated: 'true', user: user(), audiences: ['meshauth'] }),
      'denied',
    ],
    [
      'fail/another user',
      answer({ authenticated: true, user: user('system:serviceaccount:pay:web'), audiences: ['meshauth'] }),
      'denied',
    ],
    [
      'fail/audience not confirmed',
      answer({ authenticated: true, user: user(), audiences: ['https://kubernetes.default.svc'] }),
      'audience',
    ],
    [
      'fail/bound to another pod',
      answer({ authenticated: true, user: user(undefined, 'uid-2'), audiences: ['meshauth'] }),
      'denied',
    ],
    [
      "fail/the token names a pod but the review has no pod-uid (not the API server's bound-token check)",
      answer({ authenticated: true, user: { ...user(), extra: {} }, audiences: ['meshauth'] }),
      'denied',
    ],
    [
      'fail/the token names a pod but the review has no extra at all',
      answer({ authenticated: true, user: { ...user(), extra: undefined }, audiences: ['meshauth'] }),
      'denied',
    ],
    // The pod check must not be skipped because the pod UIDs came in another shape than a list of strings.
    [
      'fail/pod-uid a string naming another pod',
      answer({
        authenticated: true,
        user: { ...user(), extra: { 'authentication.kubernetes.io/pod-uid': 'uid-2' } },
        audiences: ['meshauth'],
      }),
      'unjudgeable',
    ],
    [
      'fail/pod-uid a list holding a non-string',
      answer({
        authenticated: true,
        user: { ...user(), extra: { 'authentication.kubernetes.io/pod-uid': [{ uid: 'uid-2' }] } },
        audiences: ['meshauth'],
      }),
      'unjudgeable',
    ],
    [
      'fail/extra a list, not an object',
      answer({ authenticated: true, user: { ...user(), extra: [['uid-2']] }, audiences: ['meshauth'] }),
      'unjudgeable',
    ],
    ['fail/a Status object, not a TokenReview', { kind: 'Status', code: 403 }, 'unjudgeable'],
    ['fail/no status', { kind: 'TokenReview' }, 'unjudgeable'],
    ['fail/not an object', 'ok', 'unjudgeable'],
  ])('%s', (_name, body, outcome) => {
    const verdict = judgeTokenReview(body, expected);
    const got = verdict.ok
      ? 'ok'
      : !verdict.denied
        ? 'unjudgeable'
        : verdict.reason === 'sa_token_review_audience'
          ? 'audience'
          : 'denied';
    expect(got).toBe(outcome);
  });

  it('ok/a token not bound to a pod needs no pod-uid in the review', () => {
    const { podUid: _, ...unbound } = expected;
    const body = answer({ authenticated: true, user: { ...user(), extra: {} }, audiences: ['meshauth'] });
    expect(judgeTokenReview(body, unbound)).toEqual({ ok: true });
  });

  it('ok/request body', () => {
    expect(tokenReviewRequest('tok', 'meshauth')).toEqual({
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token: 'tok', audiences: ['meshauth'] },
    });
  });

  it('ok/CLI defaults kept in step with src/ca (the CLI does not import the CA module)', () => {
    expect(K8S_TOKEN_FILE).toBe(DEFAULT_K8S_TOKEN_FILE);
    expect(K8S_API_SERVER).toBe(DEFAULT_K8S_API_SERVER);
  });
});
