// The CA's bounded admission queue (pure): who signs, who waits, who gets 429 and which Retry-After.
import { describe, expect, it } from 'vitest';
import { AdmissionQueue, MAX_RETRY_AFTER_SECONDS, MIN_RETRY_AFTER_SECONDS } from '../../../src/ca/admission-queue.js';

describe('AdmissionQueue', () => {
  it('ok/admits up to maxConcurrent at once, queues up to maxQueue, refuses the next', async () => {
    const queue = new AdmissionQueue({ maxConcurrent: 2, maxQueue: 3 });
    const results = Array.from({ length: 6 }, () => queue.admit());
    expect(results.map((r) => r.admitted)).toEqual([true, true, true, true, true, false]);
    expect(queue.depth).toBe(5);
    const refused = results[5];
    if (refused === undefined || refused.admitted) throw new Error('expected a refusal');
    expect(refused.retryAfterSeconds).toBeGreaterThanOrEqual(MIN_RETRY_AFTER_SECONDS);
  });

  it('ok/a waiting request starts when a signing one releases, in arrival order', async () => {
    const queue = new AdmissionQueue({ maxConcurrent: 1, maxQueue: 2 });
    const first = queue.admit();
    const second = queue.admit();
    const third = queue.admit();
    if (!first.admitted || !second.admitted || !third.admitted) throw new Error('expected admissions');
    const order: string[] = [];
    void second.waited.then(() => order.push('second'));
    void third.waited.then(() => order.push('third'));
    await Promise.resolve();
    expect(order).toEqual([]);
    first.release();
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual(['second']);
    second.release();
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual(['second', 'third']);
    third.release();
    expect(queue.depth).toBe(0);
  });

  it('ok/release is idempotent (a double release never frees a slot it does not hold)', () => {
    const queue = new AdmissionQueue({ maxConcurrent: 1, maxQueue: 0 });
    const first = queue.admit();
    if (!first.admitted) throw new Error('expected admission');
    first.release();
    first.release();
    expect(queue.depth).toBe(0);
    expect(queue.admit().admitted).toBe(true);
    expect(queue.admit().admitted).toBe(false);
  });

  it('ok/Retry-After follows queue depth over the measured rate, within [1, 30] s', () => {
    const queue = new AdmissionQueue({ maxConcurrent: 1, maxQueue: 10_000, maxWaitMs: 3_600_000 });
    // 100 signings per second measured over two seconds, the one slot taken throughout.
    queue.admit();
    for (let i = 1; i <= 400; i += 1) queue.recordCompletion(i * 10);
    expect(queue.signingsPerSecond).toBeGreaterThan(90);
    expect(queue.signingsPerSecond).toBeLessThan(500);
    for (let i = 0; i < 10_000; i += 1) queue.admit();
    expect(queue.retryAfterSeconds()).toBe(MAX_RETRY_AFTER_SECONDS);
    const small = new AdmissionQueue({ maxConcurrent: 1, maxQueue: 1 });
    small.admit();
    expect(small.retryAfterSeconds()).toBe(MIN_RETRY_AFTER_SECONDS);
  });

  it('ok/refuses below maxQueue once the expected wait at the measured rate passes maxWaitMs', () => {
    const queue = new AdmissionQueue({ maxConcurrent: 1, maxQueue: 10_000, maxWaitMs: 1000 });
    // 20 signings per second measured while busy.
    queue.admit();
    for (let i = 1; i <= 100; i += 1) queue.recordCompletion(i * 50);
    expect(queue.signingsPerSecond).toBeLessThan(100);
    const admitted = Array.from({ length: 200 }, () => queue.admit()).filter((a) => a.admitted).length;
    // One signing plus what drains within about a second at ≤ 100/s: far below maxQueue.
    expect(admitted).toBeGreaterThan(1);
    expect(admitted).toBeLessThan(110);
  });

  it('fail/a CA signing now and then does not take its pace for its capacity (a burst after it is admitted)', () => {
    // Found in review: 40 renewals 200 ms apart taught the queue "5 signings per second", and the next burst was
    // refused past 25 waiting with a Retry-After of 20 s, though the CA signed it in half a second.
    const queue = new AdmissionQueue({ maxConcurrent: 16, maxQueue: 1000 });
    for (let i = 1; i <= 40; i += 1) {
      const one = queue.admit();
      queue.recordCompletion(i * 200);
      if (one.admitted) one.release();
    }
    expect(queue.signingsPerSecond).toBe(500);
    const burst = Array.from({ length: 300 }, () => queue.admit());
    expect(burst.filter((a) => a.admitted)).toHaveLength(300);
    // Measured while every slot is taken, the rate follows: 16 signing, completions 10 ms apart for a second.
    for (let i = 1; i <= 100; i += 1) queue.recordCompletion(10_000 + i * 10);
    expect(queue.signingsPerSecond).toBeLessThan(400);
  });

  it.each([
    ['fail/maxConcurrent 0', { maxConcurrent: 0, maxQueue: 1 }],
    ['fail/maxQueue negative', { maxConcurrent: 1, maxQueue: -1 }],
    ['fail/maxConcurrent fractional', { maxConcurrent: 1.5, maxQueue: 1 }],
  ])('%s', (_name, options) => {
    expect(() => new AdmissionQueue(options)).toThrow(RangeError);
  });
});

describe('Retry-After counts the backlog beyond the queue', () => {
  it('ok/open connections still in their handshake lengthen Retry-After; none: the queue alone decides', () => {
    let open = 0;
    const queue = new AdmissionQueue({ maxConcurrent: 1, maxQueue: 0, backlog: () => open });
    expect(queue.admit().admitted).toBe(true);
    const alone = queue.admit();
    expect(alone).toMatchObject({ admitted: false, retryAfterSeconds: MIN_RETRY_AFTER_SECONDS });
    // The initial rate assumption is 500 signings/s: 5,000 connections ahead are 10 s of work.
    open = 5_000;
    expect(queue.admit()).toMatchObject({ admitted: false, retryAfterSeconds: 10 });
    open = 1_000_000;
    expect(queue.admit()).toMatchObject({ admitted: false, retryAfterSeconds: MAX_RETRY_AFTER_SECONDS });
  });
});

describe('a waiting request whose client leaves', () => {
  it('fail/gives up its place, not a slot: no more than maxConcurrent ever run', async () => {
    const queue = new AdmissionQueue({ maxConcurrent: 2, maxQueue: 10 });
    let running = 0;
    let most = 0;
    const started: string[] = [];
    const take = (name: string) => {
      const admission = queue.admit();
      if (!admission.admitted) throw new Error('refused');
      void admission.waited.then(() => {
        running += 1;
        most = Math.max(most, running);
        started.push(name);
      });
      return () => {
        if (started.includes(name)) running -= 1;
        admission.release();
      };
    };
    const a = take('a');
    take('b');
    take('c');
    const leaves = take('d');
    await Promise.resolve();
    expect(started).toEqual(['a', 'b']);
    leaves(); // the client of d disconnected while it waited
    await Promise.resolve();
    expect(started).toEqual(['a', 'b']); // before: c started in a slot nobody had freed
    expect(queue.depth).toBe(3);
    a();
    await Promise.resolve();
    expect(started).toEqual(['a', 'b', 'c']);
    expect(most).toBe(2);
    expect(queue.depth).toBe(2);
  });
});
