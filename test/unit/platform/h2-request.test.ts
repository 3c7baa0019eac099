// bindInScope stands in for AsyncResource.prototype.bind while node:http2 starts a client request
// (platform/h2-request.ts): what the bound function does must be exactly what Node's bound function does.
import { AsyncLocalStorage, AsyncResource, executionAsyncId } from 'node:async_hooks';
import { describe, expect, it } from 'vitest';
import { bindInScope } from '../../../src/platform/h2-request.js';

const store = new AsyncLocalStorage<string>();

/** What a bound function saw: the store, its `this`, its arguments and whether it ran in the resource's scope. */
function probe(resource: AsyncResource) {
  return function seen(this: unknown, ...args: unknown[]) {
    return { store: store.getStore(), self: this, args, inScope: executionAsyncId() === resource.asyncId() };
  };
}

describe('bindInScope', () => {
  it('runs the function in the resource’s async scope, with the caller’s this and arguments, as Node’s bind does', () => {
    const resource = store.run('made-here', () => new AsyncResource('Test'));
    const ours = bindInScope.call(resource, probe(resource));
    const nodes = resource.bind(probe(resource));
    const caller = { name: 'caller' };
    const expected = { store: 'made-here', self: caller, args: [1, 'two'], inScope: true };
    expect(store.run('called-here', () => ours.call(caller, 1, 'two'))).toEqual(expected);
    expect(store.run('called-here', () => nodes.call(caller, 1, 'two'))).toEqual(expected);
  });

  it('binds `this` to thisArg when one is given, whatever the caller passes', () => {
    const resource = new AsyncResource('Test');
    const fixed = { name: 'fixed' };
    const ours = bindInScope.call(resource, probe(resource), fixed);
    // Node takes a thisArg (its own source); @types/node declares bind(fn) only.
    const nodeBind = resource.bind as unknown as (fn: ReturnType<typeof probe>, thisArg: unknown) => typeof ours;
    const nodes = nodeBind.call(resource, probe(resource), fixed);
    expect(ours.call({ other: true }, 3)).toEqual(nodes.call({ other: true }, 3));
    expect(ours.call({ other: true }, 3)).toMatchObject({ self: fixed, args: [3], inScope: true });
  });

  it('returns what the function returns and lets what it throws through', () => {
    const resource = new AsyncResource('Test');
    expect(bindInScope.call(resource, () => 42)()).toBe(42);
    const failing = bindInScope.call(resource, () => {
      throw new Error('from fn');
    });
    expect(failing).toThrow('from fn');
  });

  it('refuses what is not a function, as Node’s bind does', () => {
    const resource = new AsyncResource('Test');
    expect(() => bindInScope.call(resource, 'nope' as unknown as () => unknown)).toThrow(TypeError);
    expect(() => resource.bind('nope' as unknown as () => unknown)).toThrow(TypeError);
  });
});
