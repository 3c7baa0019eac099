// The per-caller admission to the app hop: a caller's share in flight, then at most `maxWaiting` of its requests
// waiting in order, then refused ('full') with nothing recorded; callers apart.
// Found in review: the waiting requests had no bound of their own (only connections × streams per peer, 25,600
// with the defaults), so one identity could park tens of thousands of request heads.
import { describe, expect, it } from 'vitest';
import { PeerQueue } from '../../../../src/sidecar/inbound/peer-queue.js';

describe('PeerQueue', () => {
  it('ok/the share runs, the next wait in order and run as places free', () => {
    const queue = new PeerQueue<string>(2, 3);
    expect(['a', 'b', 'c', 'd', 'e'].map((item) => queue.enter('peer', item))).toEqual([
      'run',
      'run',
      'wait',
      'wait',
      'wait',
    ]);
    expect(queue.count('peer')).toEqual({ inFlight: 2, waiting: 3 });
    expect(queue.release('peer')).toBe('c');
    expect(queue.release('peer')).toBe('d');
    expect(queue.release('peer')).toBe('e');
    expect(queue.count('peer')).toEqual({ inFlight: 2, waiting: 0 });
    expect(queue.release('peer')).toBeUndefined();
    expect(queue.release('peer')).toBeUndefined();
    expect(queue.count('peer')).toEqual({ inFlight: 0, waiting: 0 });
    expect(queue.enter('peer', 'f')).toBe('run');
  });

  it('fail/past the waiting bound a request is refused and not recorded', () => {
    const queue = new PeerQueue<string>(1, 2);
    expect(['a', 'b', 'c'].map((item) => queue.enter('peer', item))).toEqual(['run', 'wait', 'wait']);
    expect(queue.enter('peer', 'd')).toBe('full');
    expect(queue.count('peer')).toEqual({ inFlight: 1, waiting: 2 });
    // One place freed: one more may wait again.
    expect(queue.release('peer')).toBe('b');
    expect(queue.enter('peer', 'e')).toBe('wait');
    expect(queue.enter('peer', 'f')).toBe('full');
  });

  it('fail/a bound of zero waiting refuses everything past the share', () => {
    const queue = new PeerQueue<string>(1, 0);
    expect(queue.enter('peer', 'a')).toBe('run');
    expect(queue.enter('peer', 'b')).toBe('full');
    expect(queue.count('peer')).toEqual({ inFlight: 1, waiting: 0 });
  });

  it('ok/a request that leaves while waiting frees its place; leaving after it ran changes nothing', () => {
    const queue = new PeerQueue<string>(1, 1);
    queue.enter('peer', 'a');
    expect(queue.enter('peer', 'b')).toBe('wait');
    queue.leave('peer', 'b');
    queue.leave('peer', 'a');
    expect(queue.count('peer')).toEqual({ inFlight: 1, waiting: 0 });
    expect(queue.enter('peer', 'c')).toBe('wait');
    expect(queue.release('peer')).toBe('c');
  });

  it('ok/each caller has its own share and its own bound', () => {
    const queue = new PeerQueue<string>(1, 1);
    expect(['a1', 'a2', 'a3'].map((item) => queue.enter('a', item))).toEqual(['run', 'wait', 'full']);
    expect(['b1', 'b2'].map((item) => queue.enter('b', item))).toEqual(['run', 'wait']);
    expect(queue.release('b')).toBe('b2');
    expect(queue.count('a')).toEqual({ inFlight: 1, waiting: 1 });
  });
});
