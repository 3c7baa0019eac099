import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { atPeerExpiry } from '../../../src/platform/peer-expiry.js';

const DAY_MS = 24 * 60 * 60 * 1000;

describe('atPeerExpiry', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('ok/retires at the notAfter', () => {
    const retire = vi.fn();
    atPeerExpiry(new EventEmitter(), 5_000, retire);
    vi.advanceTimersByTime(4_999);
    expect(retire).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(retire).toHaveBeenCalledOnce();
  });

  // Found in review: a delay past one timer's 2^31 − 1 ms scheduled nothing, so a connection of a certificate valid
  // for more than 24.8 days was never retired, however long it stayed open.
  it('ok/a notAfter past what one timer holds is still kept, not fired early', () => {
    const retire = vi.fn();
    atPeerExpiry(new EventEmitter(), 30 * DAY_MS, retire);
    vi.advanceTimersByTime(25 * DAY_MS);
    expect(retire).not.toHaveBeenCalled();
    vi.advanceTimersByTime(5 * DAY_MS - 1);
    expect(retire).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(retire).toHaveBeenCalledOnce();
  });

  it('ok/a connection closed first is never retired', () => {
    const retire = vi.fn();
    const connection = new EventEmitter();
    atPeerExpiry(connection, 30 * DAY_MS, retire);
    vi.advanceTimersByTime(25 * DAY_MS);
    connection.emit('close');
    vi.advanceTimersByTime(10 * DAY_MS);
    expect(retire).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('ok/a NaN notAfter schedules nothing; a past one retires at once', () => {
    const retire = vi.fn();
    atPeerExpiry(new EventEmitter(), Number.NaN, retire);
    expect(vi.getTimerCount()).toBe(0);
    atPeerExpiry(new EventEmitter(), -1_000, retire);
    vi.advanceTimersByTime(0);
    expect(retire).toHaveBeenCalledOnce();
  });
});
