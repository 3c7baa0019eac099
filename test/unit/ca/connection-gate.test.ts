import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConnectionGate, type ConnectionRefusal, type GatedSocket } from '../../../src/ca/connection-gate.js';

/** A socket as the gate sees it: destroy() closes it (once), and 'close' listeners run then. */
class FakeSocket implements GatedSocket {
  readonly id: number;
  destroyed = false;
  #listeners: Array<() => void> = [];

  constructor(id: number) {
    this.id = id;
  }

  once(_event: 'close', listener: () => void): this {
    this.#listeners.push(listener);
    return this;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    const listeners = this.#listeners;
    this.#listeners = [];
    for (const listener of listeners) listener();
  }
}

function gateOf(options: { maxActive?: number; maxWaiting?: number; maxWaitMs?: number } = {}) {
  let clock = 0;
  const admitted: number[] = [];
  const refused: Array<{ id: number; reason: ConnectionRefusal }> = [];
  let lastRefused: FakeSocket | undefined;
  const gate = new ConnectionGate<FakeSocket>({
    maxActive: 2,
    maxWaiting: 3,
    maxWaitMs: 1000,
    ...options,
    now: () => clock,
    admit: (socket) => admitted.push(socket.id),
    refused: (reason) => refused.push({ id: lastRefused?.id ?? -1, reason }),
  });
  const sockets = new Map<number, FakeSocket>();
  let next = 0;
  const expire = (nowMs: number) => {
    clock = nowMs;
    gate.expire();
  };
  const arrive = (nowMs = clock) => {
    clock = nowMs;
    const socket = new FakeSocket(next);
    next += 1;
    sockets.set(socket.id, socket);
    const destroy = socket.destroy.bind(socket);
    socket.destroy = () => {
      lastRefused = socket;
      destroy();
    };
    gate.arrive(socket);
    return socket;
  };
  return { gate, admitted, refused, arrive, expire, sockets };
}

describe('ConnectionGate', () => {
  it('admits up to maxActive at once; the next wait, their handshake not started, and get the freed slots in arrival order', () => {
    const { gate, admitted, arrive } = gateOf();
    const [a, b] = [arrive(), arrive()];
    arrive();
    arrive();
    expect(admitted).toEqual([0, 1]);
    expect(gate.active).toBe(2);
    expect(gate.waiting).toBe(2);
    b.destroy();
    expect(admitted).toEqual([0, 1, 2]);
    a.destroy();
    expect(admitted).toEqual([0, 1, 2, 3]);
    expect(gate.waiting).toBe(0);
    expect(gate.active).toBe(2);
  });

  it('closes an arrival that finds maxWaiting ahead of it, before its handshake (waiting_full)', () => {
    const { gate, refused, arrive, admitted } = gateOf({ maxActive: 1, maxWaiting: 2 });
    arrive();
    arrive();
    arrive();
    const fourth = arrive();
    expect(fourth.destroyed).toBe(true);
    expect(refused).toEqual([{ id: 3, reason: 'waiting_full' }]);
    expect(admitted).toEqual([0]);
    expect(gate.waiting).toBe(2);
  });

  it('closes waiting connections past maxWaitMs, oldest first, on expire() and on the next arrival (wait_timeout)', () => {
    const { gate, refused, arrive, expire } = gateOf({ maxActive: 1, maxWaitMs: 1000 });
    arrive(0);
    const early = arrive(0);
    const later = arrive(600);
    expire(999);
    expect(refused).toEqual([]);
    expire(1000);
    expect(early.destroyed).toBe(true);
    expect(later.destroyed).toBe(false);
    expect(refused).toEqual([{ id: 1, reason: 'wait_timeout' }]);
    arrive(1600);
    expect(later.destroyed).toBe(true);
    expect(refused.map((r) => r.reason)).toEqual(['wait_timeout', 'wait_timeout']);
    expect(gate.waiting).toBe(1);
  });

  it('a waiting connection closed elsewhere is not counted and never admitted; the next one takes the slot', () => {
    const { gate, admitted, arrive } = gateOf({ maxActive: 1 });
    const first = arrive();
    const gone = arrive();
    arrive();
    gone.destroy();
    expect(gate.waiting).toBe(1);
    first.destroy();
    expect(admitted).toEqual([0, 2]);
  });

  it('close() closes every waiting connection and leaves the admitted ones alone', () => {
    const { gate, arrive, sockets } = gateOf();
    for (let i = 0; i < 5; i += 1) arrive();
    gate.close();
    expect([...sockets.values()].map((s) => s.destroyed)).toEqual([false, false, true, true, true]);
    expect(gate.waiting).toBe(0);
  });

  it('refuses options that are not counts', () => {
    const admit = () => {};
    expect(() => new ConnectionGate({ admit, maxActive: 0 })).toThrow(RangeError);
    expect(() => new ConnectionGate({ admit, maxWaiting: -1 })).toThrow(RangeError);
    expect(() => new ConnectionGate({ admit, maxWaitMs: 1.5 })).toThrow(RangeError);
  });

  it('property: never more than maxActive admitted at once, admissions in arrival order, every connection accounted for', () => {
    const op = fc.oneof(
      fc.constant({ kind: 'arrive' as const }),
      fc.record({ kind: fc.constant('closeActive' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('clientLeaves' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 700 }) }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 5 }),
        fc.array(op, { maxLength: 120 }),
        (maxActive, maxWaiting, ops) => {
          const { gate, admitted, refused, arrive, expire, sockets } = gateOf({
            maxActive,
            maxWaiting,
            maxWaitMs: 1000,
          });
          let now = 0;
          const left = new Set<number>();
          const live = () => admitted.filter((id) => !sockets.get(id)?.destroyed);
          for (const step of ops) {
            if (step.kind === 'arrive') arrive();
            else if (step.kind === 'closeActive') {
              const open = live();
              if (open.length > 0) sockets.get(open[step.pick % open.length] as number)?.destroy();
            } else if (step.kind === 'clientLeaves') {
              const waiting = [...sockets.values()].filter((s) => !s.destroyed && !admitted.includes(s.id));
              const leaving = waiting[step.pick % Math.max(1, waiting.length)];
              if (leaving !== undefined) {
                left.add(leaving.id);
                leaving.destroy();
              }
            } else {
              now += step.ms;
              expire(now);
            }
            expect(gate.active).toBe(live().length);
            expect(gate.active).toBeLessThanOrEqual(maxActive);
            // Nobody waits while a slot is free.
            if (gate.active < maxActive) expect(gate.waiting).toBe(0);
            expect(gate.waiting).toBeLessThanOrEqual(maxWaiting);
          }
          // Arrival order is id order: admissions never overtake.
          expect(admitted).toEqual([...admitted].sort((a, b) => a - b));
          // Each connection is admitted, refused, still waiting or left by its client while waiting: exactly one.
          const refusedIds = new Set(refused.map((r) => r.id));
          for (const socket of sockets.values()) {
            const waitingStill = !socket.destroyed && !admitted.includes(socket.id);
            const states = [admitted.includes(socket.id), refusedIds.has(socket.id), waitingStill, left.has(socket.id)];
            expect(states.filter(Boolean)).toHaveLength(1);
          }
          const waitingNow = [...sockets.values()].filter((s) => !s.destroyed && !admitted.includes(s.id));
          expect(gate.waiting).toBe(waitingNow.length);
        },
      ),
      { numRuns: 300 },
    );
  });
});
