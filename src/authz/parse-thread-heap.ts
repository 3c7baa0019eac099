// How much old-generation heap the policy parsing thread may take. V8's heap bound is per thread: without one of its
// own, the thread gets the same bound as the main thread, and the two together can pass the container's memory limit,
// where the kernel kills the whole sidecar instead of V8 refusing one parse. Pure.

const MIB = 1024 * 1024;

/**
 * What a parsing thread costs beyond its old generation: its young generation, code and the modules it loads (a
 * reload of a small policy adds 24–37 MiB to the process). In a 256 MiB memory cgroup, a 1 MiB policy that needs
 * more heap than this leaves was refused and never killed the process; without the bound the kernel killed it.
 */
export const PARSE_THREAD_OVERHEAD_MB = 32;

/** Below this a parse of any real policy fails; the thread gets at least this much and reports running out. */
export const PARSE_THREAD_MIN_HEAP_MB = 16;

/** A memory limit this large or more is no limit (cgroups report "unlimited" as about 2^63 or 2^64). */
const NO_LIMIT_FROM = 2 ** 50;

/**
 * The old-generation bound for a parsing thread, in MiB, from the process's memory limit (process.constrainedMemory)
 * and its resident set now: what the limit leaves once the process and the thread's own overhead are counted, never
 * below PARSE_THREAD_MIN_HEAP_MB. Undefined without a limit: the thread gets V8's default, as the main thread does.
 */
export function parseThreadHeapMb(limitBytes: number | undefined, rssBytes: number): number | undefined {
  if (limitBytes === undefined || !(limitBytes > 0) || limitBytes >= NO_LIMIT_FROM) return undefined;
  const leftMb = Math.floor((limitBytes - rssBytes) / MIB) - PARSE_THREAD_OVERHEAD_MB;
  return Math.max(PARSE_THREAD_MIN_HEAP_MB, leftMb);
}
