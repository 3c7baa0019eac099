// parseThreadHeapMb: the policy parsing thread's heap bound is what the memory limit leaves once the process and the
// thread's own overhead are counted, at least a floor, and none without a limit (cgroups say "unlimited" with a huge
// number). The bound in a real cgroup is tested in test/integration/policy-reload-memory-limit.test.ts.
import { describe, expect, it } from 'vitest';
import {
  PARSE_THREAD_MIN_HEAP_MB,
  PARSE_THREAD_OVERHEAD_MB,
  parseThreadHeapMb,
} from '../../../src/authz/parse-thread-heap.js';

const MIB = 1024 * 1024;

describe('parseThreadHeapMb', () => {
  it('ok/no limit: no bound of its own (V8 sizes it as it sizes the main thread)', () => {
    for (const limit of [undefined, 0, Number.NaN, 2 ** 63, 2 ** 64, 18446744073709552000]) {
      expect(parseThreadHeapMb(limit, 100 * MIB)).toBeUndefined();
    }
  });

  it('ok/a limit: what it leaves past the resident set and the overhead', () => {
    expect(parseThreadHeapMb(256 * MIB, 100 * MIB)).toBe(256 - 100 - PARSE_THREAD_OVERHEAD_MB);
    expect(parseThreadHeapMb(1024 * MIB, 120.5 * MIB)).toBe(1024 - 121 - PARSE_THREAD_OVERHEAD_MB);
  });

  it('ok/a limit with nothing left: the floor, and the thread reports running out', () => {
    expect(parseThreadHeapMb(128 * MIB, 120 * MIB)).toBe(PARSE_THREAD_MIN_HEAP_MB);
    expect(parseThreadHeapMb(128 * MIB, 300 * MIB)).toBe(PARSE_THREAD_MIN_HEAP_MB);
  });
});
