// Whether this Node has a feature that landed in given releases: one comparison for every version gate (SO_REUSEPORT
// in listen(), header arrays in node:http2, safe synchronous key generation), so each gate is a table of releases, not
// a parser of its own.

/** The first release of each Node line that has a feature; a line not listed has it if newer than every listed one. */
export type NodeReleases = readonly (readonly [major: number, minor: number])[];

/** Whether Node `version` ("24.7.0") has the feature that landed in `since`. */
export function nodeHas(since: NodeReleases, version: string = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const line = since.find(([m]) => m === major);
  if (line !== undefined) return minor >= line[1];
  return major > Math.max(...since.map(([m]) => m));
}
