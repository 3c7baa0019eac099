// What the CA remembers of its TokenReviews: a denial for DENIAL_MEMORY_MS or until the token's exp (bounded in
// count), nothing of a review that threw (an unavailable API server, a refusal a cluster fix can change), and one
// review at a time per token. Found in review: with the per-identity limit charged
// only after the review, a revoked token replayed in a loop (or sent many times at once) would cost one API-server
// call per request.
import { describe, expect, it } from 'vitest';
import { DENIAL_MEMORY_MS, TokenReviewMemo } from '../../../src/ca/token-review-memo.js';
import { MeshauthError } from '../../../src/errors/index.js';

const NOW = 1_000_000;
const denied = () =>
  new MeshauthError('MESHAUTH_ERR_CA_SA_TOKEN_REVIEW_DENIED', 'TokenReview: pod not found', {
    reason: 'sa_token_review_denied',
  });
const unavailable = () =>
  new MeshauthError('MESHAUTH_ERR_CA_UNAVAILABLE', 'TokenReview unavailable', {
    reason: 'sa_token_review_unavailable',
  });
const codeOf = (promise: Promise<unknown>) =>
  promise.then(
    () => 'ok',
    (error: MeshauthError) => error.code,
  );

describe('TokenReviewMemo', () => {
  it.each([
    ['fail/a denied token is refused again without a review for the memory time', NOW + 3_600_000, DENIAL_MEMORY_MS],
    ['fail/a denied token expiring sooner is remembered until its exp', NOW + 10_000, 10_000],
  ])('%s', async (_name, expiresAtMs, rememberedMs) => {
    const memo = new TokenReviewMemo();
    let calls = 0;
    const review = async () => {
      calls += 1;
      return denied();
    };
    expect(await codeOf(memo.review('t1', expiresAtMs, NOW, review))).toBe('MESHAUTH_ERR_CA_SA_TOKEN_REVIEW_DENIED');
    expect(memo.denial('t1', NOW + rememberedMs - 1)?.reason).toBe('sa_token_review_denied');
    expect(memo.denial('t2', NOW)).toBeUndefined();
    expect(memo.denial('t1', NOW + rememberedMs)).toBeUndefined();
    expect(memo.size).toBe(0);
    expect(calls).toBe(1);
  });

  it.each([
    ['ok/a confirmed token is not remembered', async () => undefined],
    [
      'ok/a refusal the review throws (an unavailable API server) is not remembered',
      async () => {
        throw unavailable();
      },
    ],
  ])('%s', async (_name, review) => {
    const memo = new TokenReviewMemo();
    await codeOf(memo.review('t', NOW + 60_000, NOW, review));
    expect(memo.denial('t', NOW)).toBeUndefined();
    expect(memo.size).toBe(0);
  });

  it('fail/the same token sent again while its review runs waits for that review instead of asking again', async () => {
    const memo = new TokenReviewMemo();
    let calls = 0;
    let answer: (verdict: MeshauthError | undefined) => void = () => {};
    const review = () => {
      calls += 1;
      return new Promise<MeshauthError | undefined>((resolve) => {
        answer = resolve;
      });
    };
    const waiting = [1, 2, 3].map(() => codeOf(memo.review('t', NOW + 60_000, NOW, review)));
    const other = codeOf(memo.review('u', NOW + 60_000, NOW, async () => undefined));
    expect(calls).toBe(1);
    answer(denied());
    expect(await Promise.all(waiting)).toEqual(Array(3).fill('MESHAUTH_ERR_CA_SA_TOKEN_REVIEW_DENIED'));
    expect(await other).toBe('ok');
    // Done: another review is a new call.
    const next = codeOf(memo.review('v', NOW + 60_000, NOW, review));
    expect(calls).toBe(2);
    answer(undefined);
    expect(await next).toBe('ok');
  });

  it('ok/past its bound the expired denials go first, then the oldest', async () => {
    const memo = new TokenReviewMemo(3);
    const deny = async () => denied();
    await codeOf(memo.review('short', NOW + 10, NOW, deny));
    await codeOf(memo.review('a', NOW + 60_000, NOW, deny));
    await codeOf(memo.review('b', NOW + 60_000, NOW, deny));
    await codeOf(memo.review('c', NOW + 60_000, NOW + 20, deny)); // 'short' has expired: it goes
    expect(['a', 'b', 'c'].map((t) => memo.denial(t, NOW + 20) !== undefined)).toEqual([true, true, true]);
    await codeOf(memo.review('d', NOW + 60_000, NOW + 20, deny)); // none expired: the oldest, 'a', goes
    expect(['a', 'b', 'c', 'd'].map((t) => memo.denial(t, NOW + 20) !== undefined)).toEqual([false, true, true, true]);
    expect(memo.size).toBe(3);
  });
});
