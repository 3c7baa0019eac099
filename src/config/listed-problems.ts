// How many problems one refusal of a file lists. Each problem is a line of the error message, of the log line that
// carries it and of the CLI's output: a 1 MiB policy that is one flat list of 520,000 invalid items made a 38 MB
// message. The first ones say what is wrong; a count says how much more is.

/** The most problems a policy or cases file refusal lists. */
export const MAX_LISTED_PROBLEMS = 20;

/** The first `max` of `problems`, and how many were left out. */
export function listedProblems<T>(
  problems: readonly T[],
  max = MAX_LISTED_PROBLEMS,
): { readonly listed: readonly T[]; readonly omitted: number } {
  if (problems.length <= max) return { listed: problems, omitted: 0 };
  return { listed: problems.slice(0, max), omitted: problems.length - max };
}

/** The line that stands for the problems left out (the sidecar and gateway config loaders' wording). */
export function omittedProblemsText(omitted: number): string {
  return `(${omitted} more problem${omitted === 1 ? '' : 's'})`;
}
