// diffJson against an independent RFC 6902 applier: for any two JSON values, applying diff(a, b) to a gives b.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { diffJson, escapePointerToken, parsePointer } from '../../../src/k8s/index.js';
import { MAX_ALIGNMENT_CELLS } from '../../../src/k8s/inject-json-patch.js';
import { applyJsonPatch, type Operation } from '../../helpers/json-patch.js';

const json = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.string({ maxLength: 4 }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.constantFrom('a', 'b', 'c/d', 'e~f', ''), tie('value'), { maxKeys: 4 }),
  ),
})).value;

describe('diffJson', () => {
  it('ok/apply(a, diff(a, b)) = b for random JSON (keys with / ~ and empty keys included)', () => {
    fc.assert(
      fc.property(json, json, (a, b) => {
        expect(applyJsonPatch(a, diffJson(a, b) as Operation[])).toEqual(b);
      }),
      { numRuns: 500 },
    );
  });

  it('ok/equal values give no operations', () => {
    fc.assert(fc.property(json, (a) => diffJson(a, structuredClone(a)).length === 0));
  });

  it('ok/inserting at the front of a list is one add, not a rewrite of every item', () => {
    const from = { list: [{ name: 'a' }, { name: 'b' }] };
    const to = { list: [{ name: 's' }, { name: 'a' }, { name: 'b' }] };
    expect(diffJson(from, to)).toEqual([{ op: 'add', path: '/list/0', value: { name: 's' } }]);
  });

  it('ok/named items are aligned by name: a container that changed inside stays in place under the new one', () => {
    const from = [{ name: 'migrate', image: 'm:1' }];
    const to = [{ name: 'meshauth-proxy' }, { name: 'migrate', image: 'm:1', env: [{ name: 'A', value: '1' }] }];
    const ops = diffJson(from, to);
    expect(ops).toEqual([
      { op: 'add', path: '/0', value: { name: 'meshauth-proxy' } },
      { op: 'add', path: '/1/env', value: [{ name: 'A', value: '1' }] },
    ]);
    expect(applyJsonPatch(from, ops as Operation[])).toEqual(to);
  });

  it('ok/a long list that gained items at its end costs a diff in linear time: one add per new item', () => {
    // A pod under review is the creator's input: 20,000 env entries used to mean a 400-million-cell table.
    const env = Array.from({ length: 20_000 }, (_, i) => ({ name: `E${i}` }));
    const added = [{ name: 'HTTP_PROXY', value: 'x' }];
    const ops = diffJson({ env }, { env: [...env, ...added] });
    expect(ops).toEqual([{ op: 'add', path: '/env/20000', value: added[0] }]);
  });

  it('ok/a middle too large to align is replaced whole, and the patch still gives the target', () => {
    const size = Math.ceil(Math.sqrt(MAX_ALIGNMENT_CELLS)) + 1;
    const from = Array.from({ length: size }, (_, i) => ({ name: `n${i}` }));
    const to = [...from].reverse();
    const ops = diffJson({ list: from }, { list: to });
    expect(ops).toEqual([{ op: 'replace', path: '/list', value: to }]);
    expect(applyJsonPatch({ list: from }, ops as Operation[])).toEqual({ list: to });
  });

  it('ok/prefix, suffix and a changed middle: the middle is aligned, the rest matched in place', () => {
    const from = ['a', 'b', 'x', 'y', 'c', 'd'];
    const to = ['a', 'b', 'y', 'z', 'c', 'd'];
    const ops = diffJson(from, to);
    expect(ops).toEqual([
      { op: 'remove', path: '/2' },
      { op: 'add', path: '/3', value: 'z' },
    ]);
    expect(applyJsonPatch(from, ops as Operation[])).toEqual(to);
  });

  it('ok/pointer tokens escape ~ and / (RFC 6901 §4)', () => {
    expect(escapePointerToken('meshauth.dev/status')).toBe('meshauth.dev~1status');
    expect(escapePointerToken('a~/b')).toBe('a~0~1b');
    expect(parsePointer('/metadata/annotations/a~0~1b')).toEqual(['metadata', 'annotations', 'a~/b']);
  });
});

describe('diffJson: the work of aligning a list grows with its size, not with its square', () => {
  // The pod under review is its creator's input: 500 identical unnamed init containers made the alignment compare
  // every pair of items deeply (a 1 MB review kept the webhook busy for ~20 s). Counting the reads of the items'
  // properties measures that work without a clock.
  function counted<T>(value: T, reads: { n: number }): T {
    if (typeof value !== 'object' || value === null) return value;
    const inner = Array.isArray(value) ? value.map((v) => counted(v, reads)) : value;
    if (!Array.isArray(value)) {
      for (const key of Object.keys(inner as object)) {
        (inner as Record<string, unknown>)[key] = counted((inner as Record<string, unknown>)[key], reads);
      }
    }
    return new Proxy(inner as object, {
      get(target, key, receiver) {
        reads.n++;
        return Reflect.get(target, key, receiver);
      },
    }) as T;
  }

  it('ok/300 identical unnamed items behind a named one cost a bounded number of reads per item', () => {
    const reads = { n: 0 };
    const item = () => ({ image: 'x', args: Array.from({ length: 40 }, (_, i) => ({ v: i })) });
    const from = counted({ list: [...Array.from({ length: 300 }, item), { name: 'meshauth-proxy' }] }, reads);
    const to = counted({ list: [{ name: 'meshauth-proxy', image: 'y' }, ...Array.from({ length: 300 }, item)] }, reads);
    const ops = diffJson(from, to);
    const work = reads.n;
    expect(
      applyJsonPatch(
        structuredClone({ list: [...Array.from({ length: 300 }, item), { name: 'meshauth-proxy' }] }),
        JSON.parse(JSON.stringify(ops)) as Operation[],
      ),
    ).toEqual({ list: [{ name: 'meshauth-proxy', image: 'y' }, ...Array.from({ length: 300 }, item)] });
    // Each item holds ~120 values; a few full passes over both lists are fine, one per pair of items is not.
    expect(work).toBeLessThan(20 * 2 * 301 * 130);
  });
});
