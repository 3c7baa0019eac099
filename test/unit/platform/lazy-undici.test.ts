// lazy-undici: undici is imported on the first loadUndici() call only, once, and is then available synchronously
// (an endpoint's first HTTP/1.1 pool waits for the import; later ones are made at once).
import { describe, expect, it, vi } from 'vitest';

describe('lazy undici', () => {
  it('nothing is loaded before the first call; one import for every call; then available synchronously', async () => {
    vi.resetModules(); // a fresh instance of the module, whatever other tests in this worker loaded
    const fresh = await import('../../../src/platform/lazy-undici.js');
    expect(fresh.undiciIfLoaded()).toBeUndefined();
    const first = fresh.loadUndici();
    expect(fresh.loadUndici()).toBe(first);
    expect(fresh.undiciIfLoaded(), 'not before the import finished').toBeUndefined();
    const undici = await first;
    expect(typeof undici.Pool).toBe('function');
    expect(fresh.undiciIfLoaded()).toBe(undici);
  });
});
