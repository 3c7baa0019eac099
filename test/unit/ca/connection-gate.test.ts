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
  const sourceOf = new Map<number, string>();
  const arrive = (nowMs = clock, source = '') => {
    clock = nowMs;
    const socket = new FakeSocket(next);
    sourceOf.set(socket.id, source);
    next += 1;
    sockets.set(socket.id, socket);
    const destroy = socket.destroy.bind(socket);
    socket.destroy = () => {
      lastRefused = socket;
      destroy();
    };
    gate.arrive(socket, source);
    return socket;
  };
  return { gate, admitted, refused, arrive, expire, sockets, sourceOf };
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

  it('a freed slot goes to a source under a quarter of the slots before earlier arrivals of a source holding more', () => {
    const { gate, admitted, arrive } = gateOf({ maxActive: 4, maxWaiting: 20 });
    const held = [arrive(0, 'x'), arrive(0, 'x'), arrive(0, 'x'), arrive(0, 'x')];
    arrive(0, 'x');
    arrive(0, 'x');
    arrive(0, 'y');
    expect(gate.waiting).toBe(3);
    held[0]?.destroy();
    // y holds no slot (under its share of 1); x holds three.
    expect(admitted).toEqual([0, 1, 2, 3, 6]);
    held[1]?.destroy();
    // Nobody under its share waits: x's oldest.
    expect(admitted).toEqual([0, 1, 2, 3, 6, 4]);
  });

  it('sources take turns: the one served longest ago goes first', () => {
    const { admitted, arrive, sockets } = gateOf({ maxActive: 1, maxWaiting: 20 });
    arrive(0, 'x');
    arrive(0, 'x');
    arrive(0, 'x');
    arrive(0, 'y');
    arrive(0, 'y');
    for (let step = 0; step < 4; step += 1) sockets.get(admitted.at(-1) as number)?.destroy();
    // Arrival order would be 0, 1, 2, 3, 4.
    expect(admitted).toEqual([0, 1, 3, 2, 4]);
  });

  it('a full line makes room by closing the newest waiting connection of a source holding over a quarter of it', () => {
    const { gate, refused, arrive, sockets } = gateOf({ maxActive: 1, maxWaiting: 4 });
    arrive(0, 'x');
    for (let i = 0; i < 4; i += 1) arrive(0, 'x');
    expect(gate.waiting).toBe(4);
    const y = arrive(0, 'y');
    expect(y.destroyed).toBe(false);
    expect(sockets.get(4)?.destroyed).toBe(true);
    expect(refused).toEqual([{ id: 4, reason: 'waiting_full' }]);
    arrive(0, 'y');
    expect(sockets.get(3)?.destroyed).toBe(true);
    // x still holds more than its share of the line: a newcomer from x is the one refused.
    const late = arrive(0, 'x');
    expect(late.destroyed).toBe(true);
    expect(refused.map((r) => r.id)).toEqual([4, 3, late.id]);
    expect(gate.waiting).toBe(4);
  });

  it('refuses options that are not counts', () => {
    const admit = () => {};
    expect(() => new ConnectionGate({ admit, maxActive: 0 })).toThrow(RangeError);
    expect(() => new ConnectionGate({ admit, maxWaiting: -1 })).toThrow(RangeError);
    expect(() => new ConnectionGate({ admit, maxWaitMs: 1.5 })).toThrow(RangeError);
  });

  it('property: never more than maxActive admitted at once, admissions in arrival order per source, a freed slot to a source under its share when one waits, every connection accounted for', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('arrive' as const), source: fc.constantFrom('a', 'b', 'c') }),
      fc.record({ kind: fc.constant('closeActive' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('clientLeaves' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 700 }) }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 0, max: 12 }),
        // fast-check's default size would cap the list at about ten steps.
        fc.array(op, { maxLength: 120, size: 'max' }),
        (maxActive, maxWaiting, ops) => {
          const { gate, admitted, refused, arrive, expire, sockets, sourceOf } = gateOf({
            maxActive,
            maxWaiting,
            maxWaitMs: 1000,
          });
          const share = Math.max(1, Math.floor(maxActive / 4));
          let now = 0;
          const left = new Set<number>();
          const live = () => admitted.filter((id) => !sockets.get(id)?.destroyed);
          const waitingIds = () =>
            [...sockets.values()].filter((s) => !s.destroyed && !admitted.includes(s.id)).map((s) => s.id);
          const activeOf = (source: string) => live().filter((id) => sourceOf.get(id) === source).length;
          for (const step of ops) {
            if (step.kind === 'arrive') arrive(now, step.source);
            else if (step.kind === 'closeActive') {
              const open = live();
              if (open.length === 0) continue;
              const closing = open[step.pick % open.length] as number;
              // Who was under its share among the waiting sources, counting the slot about to free.
              const underShare = new Set(
                waitingIds()
                  .map((id) => sourceOf.get(id) as string)
                  .filter((source) => activeOf(source) - (sourceOf.get(closing) === source ? 1 : 0) < share),
              );
              const before = admitted.length;
              sockets.get(closing)?.destroy();
              const next = admitted[before];
              if (next !== undefined && underShare.size > 0)
                expect(underShare.has(sourceOf.get(next) as string)).toBe(true);
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
          // Arrival order is id order: within a source, admissions never overtake.
          for (const source of ['a', 'b', 'c']) {
            const ofSource = admitted.filter((id) => sourceOf.get(id) === source);
            expect(ofSource).toEqual([...ofSource].sort((x, y) => x - y));
          }
          // Each connection is admitted, refused, still waiting or left by its client while waiting: exactly one.
          const refusedIds = new Set(refused.map((r) => r.id));
          for (const socket of sockets.values()) {
            const waitingStill = !socket.destroyed && !admitted.includes(socket.id);
            const states = [admitted.includes(socket.id), refusedIds.has(socket.id), waitingStill, left.has(socket.id)];
            expect(states.filter(Boolean)).toHaveLength(1);
          }
          const waitingNow = [...sockets.values()].filter((s) => !s.destroyed && !admitted.includes(s.id));
          expect(gate.waiting).toBe(waitingNow.length);
          // Nobody is stranded: closing admitted connections one by one lets every waiting one in.
          for (let round = 0; round < waitingNow.length + maxActive && gate.waiting > 0; round += 1) {
            sockets.get(live()[0] as number)?.destroy();
            expect(gate.active).toBe(Math.min(maxActive, live().length));
          }
          expect(gate.waiting).toBe(0);
          expect(waitingNow.every((s) => admitted.includes(s.id))).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });
});
