import { describe, expect, it } from 'vitest';
import { causeChain } from '../../../src/errors/index.js';

describe('causeChain', () => {
  it('ok/the error, then what it wraps, nearest first; a non-Error cause ends the chain', () => {
    const root = new Error('root', { cause: 'not an error' });
    const mid = new Error('mid', { cause: root });
    expect([...causeChain(new Error('top', { cause: mid }))].map((e) => e.message)).toEqual(['top', 'mid', 'root']);
    expect([...causeChain('a string')]).toEqual([]);
  });

  it('fail/a cyclic chain stops after four errors', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    a.cause = b;
    expect([...causeChain(a)].map((e) => e.message)).toEqual(['a', 'b', 'a', 'b']);
  });
});
