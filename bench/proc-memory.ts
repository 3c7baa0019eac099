// A process's resident memory from /proc, in a module of its own: the bench's sidecar processes read their own
// (meshauth-pair.ts) and must not load the load generator's modules (undici) to do it, or their RSS would include
// what the sidecar itself never loads.
import { readFileSync } from 'node:fs';

export interface MemoryKiB {
  /** Resident set now. */
  readonly rss: number;
  /** Peak resident set since start (VmHWM). */
  readonly hwm: number;
  /** The resident set split: anonymous pages, and file-backed ones (the node binary's, shared between processes). */
  readonly anon: number;
  readonly file: number;
}

export function memoryKiB(pid: number): MemoryKiB {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
    return { rss: field('VmRSS'), hwm: field('VmHWM'), anon: field('RssAnon'), file: field('RssFile') };
  } catch {
    return { rss: Number.NaN, hwm: Number.NaN, anon: Number.NaN, file: Number.NaN };
  }
}
