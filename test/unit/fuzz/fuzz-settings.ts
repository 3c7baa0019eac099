// Run settings shared by the property-based tests: seeded and bounded so `npm test` is reproducible and quick;
// `FUZZ_RUNS=100000 npx vitest run test/unit/fuzz` (npm run fuzz) runs the same properties much longer, and
// `FUZZ_SEED=<n>` replays the seed fast-check printed for a failure.
import type { Parameters } from 'fast-check';

/** The seed every property starts from unless FUZZ_SEED overrides it. */
export const DEFAULT_SEED = 20_261_130;

/** fast-check parameters for one property: `runs` in the normal suite, FUZZ_RUNS when set. */
export function fuzzParams<T>(runs: number): Parameters<T> {
  const override = Number(process.env.FUZZ_RUNS);
  const seedText = process.env.FUZZ_SEED;
  const numRuns = Number.isInteger(override) && override > 0 ? override : runs;
  return { seed: seedText === undefined ? DEFAULT_SEED : Number(seedText), numRuns };
}

/** Per-test timeout that grows with FUZZ_RUNS (the default 30 s would cut a long run short). */
export function fuzzTimeout(runs: number, msPerRun = 1): number {
  const override = Number(process.env.FUZZ_RUNS);
  const numRuns = Number.isInteger(override) && override > 0 ? override : runs;
  return Math.max(30_000, numRuns * msPerRun * 4);
}
