// PassportStore bounds: per owner and in total; a flooding owner evicts only its own entries, expired entries go
// first, and a live entry of another owner survives any flood.
import { describe, expect, it } from 'vitest';
import type { ReceivedPassport } from '../../../src/authn/passport/index.js';
import { PassportStore } from '../../../src/sidecar/passport-store.js';

const passport = (raw: string): ReceivedPassport => ({
  raw,
  origin: raw,
  act: { sub: 'spiffe://td/a' },
  userExpiresAt: 0,
});
const NOW = Date.now();
const LIVE = NOW + 60_000;

describe('PassportStore', () => {
  it('ok/remembers and finds a live passport; an expired one is gone', () => {
    const store = new PassportStore();
    store.remember(passport('a'), LIVE, 'alice');
    store.remember(passport('b'), NOW - 1, 'bob');
    expect(store.lookup('a', NOW)?.raw).toBe('a');
    expect(store.lookup('b', NOW)).toBeUndefined();
    expect(store.lookup('never', NOW)).toBeUndefined();
  });

  it('fail/one owner flooding past its cap evicts only its own oldest entries', () => {
    const store = new PassportStore({ maxEntries: 100, maxPerOwner: 10 });
    store.remember(passport('alice-1'), LIVE, 'alice');
    for (let i = 0; i < 10_500; i++) store.remember(passport(`mallory-${i}`), LIVE, 'mallory');
    expect(store.lookup('alice-1', NOW)?.raw).toBe('alice-1');
    expect(store.size).toBe(11);
    expect(store.lookup('mallory-10499', NOW)).toBeDefined();
    expect(store.lookup('mallory-0', NOW)).toBeUndefined();
  });

  it('fail/many flooding owners fill the store: the largest owner gives way, a small owner keeps its entry', () => {
    const store = new PassportStore({ maxEntries: 50, maxPerOwner: 40 });
    store.remember(passport('alice-1'), LIVE, 'alice');
    for (let i = 0; i < 1_000; i++) store.remember(passport(`m${i % 3}-${i}`), LIVE, `mallory-${i % 3}`);
    expect(store.size).toBe(50);
    expect(store.lookup('alice-1', NOW)?.raw).toBe('alice-1');
  });

  // Found in review: the store was bounded in entries only; a peer on users' call paths could make a sidecar hold
  // 10,000 passports of up to 16 KiB each (about 100 MB measured) for their minute.
  it('fail/the store is bounded in bytes of header text too: the largest owner gives way, others keep theirs', () => {
    const store = new PassportStore({ maxBytes: 10 * 1024 });
    const big = (raw: string): ReceivedPassport => passport(raw.padEnd(1024, 'x'));
    store.remember(big('alice'), LIVE, 'alice');
    for (let i = 0; i < 100; i++) store.remember(big(`mallory-${i}`), LIVE, 'mallory');
    expect(store.size).toBe(10);
    expect(store.lookup('alice'.padEnd(1024, 'x'), NOW)).toBeDefined();
    expect(store.lookup('mallory-99'.padEnd(1024, 'x'), NOW)).toBeDefined();
  });

  it('ok/a full store drops expired entries before live ones', () => {
    const store = new PassportStore({ maxEntries: 3, maxPerOwner: 3 });
    store.remember(passport('old-1'), NOW - 10, 'x');
    store.remember(passport('old-2'), NOW - 10, 'y');
    store.remember(passport('alice'), LIVE, 'alice');
    store.remember(passport('bob'), LIVE, 'bob');
    expect(store.lookup('alice', NOW)?.raw).toBe('alice');
    expect(store.lookup('bob', NOW)?.raw).toBe('bob');
  });

  it('ok/without an owner, wraps of one origin share one bound', () => {
    const store = new PassportStore({ maxEntries: 100, maxPerOwner: 2 });
    const wrap = (raw: string): ReceivedPassport => ({ ...passport(raw), origin: 'origin-1' });
    store.remember(wrap('w1'), LIVE);
    store.remember(wrap('w2'), LIVE);
    store.remember(wrap('w3'), LIVE);
    expect(store.lookup('w1', NOW)).toBeUndefined();
    expect(store.lookup('w3', NOW)?.raw).toBe('w3');
  });
});
