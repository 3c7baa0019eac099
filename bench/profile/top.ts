// Top self-time functions of a .cpuprofile (V8 format), with the share of all samples: where a sidecar's CPU goes.
// Run: `node dist/bench/profile/top.js FILE.cpuprofile [N]`.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
}

const [file, count] = process.argv.slice(2);
if (file === undefined) throw new Error('usage: top.js FILE.cpuprofile [N]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const self = new Map<string, number>();
for (const id of profile.samples) {
  const frame = byId.get(id)?.callFrame;
  if (frame === undefined) continue;
  const where =
    frame.url === '' ? '' : ` ${frame.url.replace(/^.*\/(node_modules|src|dist)\//, '$1/')}:${frame.lineNumber + 1}`;
  const key = `${frame.functionName || '(anonymous)'}${where}`;
  self.set(key, (self.get(key) ?? 0) + 1);
}
const idle = self.get('(idle)') ?? 0;
const busy = profile.samples.length - idle;
console.log(`${busy} busy samples (${idle} idle)`);
for (const [key, n] of [...self]
  .filter(([k]) => k !== '(idle)')
  .sort((a, b) => b[1] - a[1])
  .slice(0, Number(count ?? 30))) {
  console.log(`${((n / busy) * 100).toFixed(1).padStart(5)} %  ${key}`);
}
