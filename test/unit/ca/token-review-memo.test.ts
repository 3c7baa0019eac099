// What the CA remembers of its TokenReviews: a denial for DENIAL_MEMORY_MS or until the token's exp (bounded in count),
// "unavailable" for UNAVAILABLE_MEMORY_MS, nothing of any other refusal a review throws (a refusal a cluster fix can
// change), and one review at a time per token, keyed by the token's signed part. Found in review: with the per-identity
// limit charged only after the review, a revoked token replayed in a loop (or sent many times at once) would cost one
// API-server call per request.
import { performance } from 'node:perf_hooks';
import { describe, expect, it, vi } from 'vitest';
import { DENIAL_MEMORY_MS, TokenReviewMemo, UNAVAILABLE_MEMORY_MS } from '../../../src/ca/token-review-memo.js';
import { MeshauthError } from '../../../src/errors/index.js';

const NOW = 1_000_000;
/** Tokens as header.payload.signature: the memo keys on the signed part. */
const T1 = 'h.p1.s';
const T2 = 'h.p2.s';
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
    expect(await codeOf(memo.review(T1, expiresAtMs, NOW, review))).toBe('MESHAUTH_ERR_CA_SA_TOKEN_REVIEW_DENIED');
    expect(memo.denial(T1, NOW + rememberedMs - 1)?.reason).toBe('sa_token_review_denied');
    expect(memo.denial(T2, NOW)).toBeUndefined();
    expect(memo.denial(T1, NOW + rememberedMs)).toBeUndefined();
    expect(memo.size).toBe(0);
    expect(calls).toBe(1);
  });

  it.each([
    ['ok/a confirmed token is not remembered', async () => undefined],
    [
      'ok/a refusal a cluster fix can change is not remembered',
      async () => {
        throw new MeshauthError('MESHAUTH_ERR_CA_SA_TOKEN_REVIEW_DENIED', 'TokenReview answer refused', {
          reason: 'sa_token_review_invalid',
        });
      },
    ],
  ])('%s', async (_name, review) => {
    const memo = new TokenReviewMemo();
    await codeOf(memo.review(T1, NOW + 60_000, NOW, review));
    expect(memo.denial(T1, NOW)).toBeUndefined();
    expect(memo.size).toBe(0);
  });

  it('fail/an unavailable API server: the same token gets the 503 again without a review, for a second', async () => {
    const memo = new TokenReviewMemo();
    let calls = 0;
    const review = async () => {
      calls += 1;
      throw unavailable();
    };
    expect(await codeOf(memo.review(T1, NOW + 60_000, NOW, review))).toBe('MESHAUTH_ERR_CA_UNAVAILABLE');
    expect(memo.denial(T1, NOW + UNAVAILABLE_MEMORY_MS - 1)?.reason).toBe('sa_token_review_unavailable');
    // From when the answer came: the few µs the review took move the end past NOW + UNAVAILABLE_MEMORY_MS.
    expect(memo.denial(T1, NOW + UNAVAILABLE_MEMORY_MS + 50)).toBeUndefined();
    expect(calls).toBe(1);
  });

  it('fail/an unavailable answer that took 1.5 s is remembered for a second from when it came', async () => {
    const memo = new TokenReviewMemo();
    const clock = vi.spyOn(performance, 'now').mockReturnValueOnce(0).mockReturnValueOnce(1_500);
    try {
      await codeOf(
        memo.review(T1, NOW + 60_000, NOW, async () => {
          throw unavailable();
        }),
      );
    } finally {
      clock.mockRestore();
    }
    expect(memo.denial(T1, NOW + 1_500 + UNAVAILABLE_MEMORY_MS - 1)?.reason).toBe('sa_token_review_unavailable');
    expect(memo.denial(T1, NOW + 1_500 + UNAVAILABLE_MEMORY_MS)).toBeUndefined();
  });

  it('fail/an ES256 token with the other form of its signature is the same token to the memo', async () => {
    const memo = new TokenReviewMemo();
    await codeOf(memo.review('h.p.s-low', NOW + 60_000, NOW, async () => denied()));
    expect(memo.denial('h.p.s-high', NOW)?.reason).toBe('sa_token_review_denied');
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
