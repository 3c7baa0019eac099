// `meshauth ca init` killed with SIGKILL at chosen points of what it writes (the marker made, mid-staging, the first
// rename, bundle.pem renamed, the marker removed; under --force before any change and mid-rename; and killed twice),
// then run again as a user would, without --force: it either makes a working CA or refuses because the killed run
// had finished one, which then works and is left as it was. Every prefix of the publish order is covered in-process
// by test/integration/ca-init-interrupted.test.ts; here the kill is real, of the built CLI.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCaMaterial } from '../../src/ca/index.js';
import { type KilledRun, killAfterWrites } from '../helpers/kill-after-writes.js';
import { assertBuilt, meshauth } from '../helpers/meshauth-cli.js';

const INIT = ['ca', 'init', '--trust-domain', 'example.org', '--dir'];
const CA_FILES = ['bundle.pem', 'ca.json', 'intermediate.crt', 'intermediate.key', 'jwt.key', 'root.crt', 'root.key'];
/** The directory lock a killed `--force` run held (rotation-lock.ts; broken at once, its holder having ended). */
const LOCK = '.intermediate-rotation.lock';
const REPLACED = /^meshauth: replaced what an unfinished `meshauth ca init` \(pid \d+ on .+\) left in .*\n$/;
const BROKE_LOCK =
  /^meshauth: broke \.intermediate-rotation\.lock in .*: the process that held it \(pid \d+ on .+\) has ended.*\n/;

let cwd: string;
let template: string;
let killedAfter: (changes: number, args: readonly string[], cwd: string) => Promise<KilledRun>;
beforeAll(async () => {
  assertBuilt(['src/cli', 'src/ca']);
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-init-killed-'));
  killedAfter = killAfterWrites(cwd);
  template = join(cwd, 'template');
  const made = await meshauth([...INIT, template], { cwd });
  expect(made.code, made.stderr).toBe(0);
});
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

interface KillPoint {
  readonly name: string;
  /** Over a CA, with --force. */
  readonly force?: boolean;
  /** Kill after these many changes to the file system (kill-after-writes.ts counts them), in turn, one run each. */
  readonly kills: readonly number[];
  /** What the directory holds once the last run was killed: the kill landed where its name says. */
  readonly holds: readonly string[];
  readonly lacks: readonly string[];
  readonly outcome: 'made' | 'made, notice' | 'refused';
}

// The numbers follow the changes `ca init` makes: marker created (3), staging made and filled (5–13), marked begun,
// tokens/used made, the seven renames (17–23) bundle.pem last, staging and marker removed (24, 25); --force takes the
// directory lock after staging (15) and removes the old CA's state before its renames (27–33).
const POINTS: readonly KillPoint[] = [
  {
    name: 'after the marker is created',
    kills: [3],
    holds: ['.ca-init'],
    lacks: ['.ca-init.staging'],
    outcome: 'made',
  },
  {
    name: 'mid-staging',
    kills: [10],
    holds: ['.ca-init.staging/root.crt'],
    lacks: ['.ca-init.staging/bundle.pem', 'jwt.key'],
    outcome: 'made',
  },
  { name: 'after the first rename', kills: [17], holds: ['jwt.key'], lacks: ['root.key'], outcome: 'made, notice' },
  {
    name: 'after bundle.pem, the last file, is renamed in: that CA is kept',
    kills: [23],
    holds: ['bundle.pem', '.ca-init'],
    lacks: [],
    outcome: 'refused',
  },
  { name: 'after the marker is removed', kills: [25], holds: ['bundle.pem'], lacks: ['.ca-init'], outcome: 'refused' },
  {
    name: 'killed twice: mid-rename, then the run taking it over mid-staging',
    kills: [19, 17],
    holds: ['.ca-init', 'root.crt', '.ca-init.staging/root.key'],
    lacks: ['ca.json', '.ca-init.staging/root.crt'],
    outcome: 'made, notice',
  },
  {
    name: '--force, before it changed a file: the old CA is kept',
    force: true,
    kills: [13],
    holds: ['.ca-init.staging/bundle.pem', 'bundle.pem'],
    lacks: [LOCK],
    outcome: 'refused',
  },
  {
    name: '--force, mid-rename',
    force: true,
    kills: [30],
    holds: ['.ca-init', LOCK, '.ca-init.staging/intermediate.key'],
    lacks: ['.ca-init.staging/ca.json'],
    outcome: 'made, notice',
  },
];

describe('ca init killed, then run again without --force', () => {
  it.concurrent.each(POINTS.map((point) => [point.name, point] as const))('ok/%s', async (name, point) => {
    const dir = join(cwd, name.replace(/[^a-z0-9]+/gi, '-'));
    if (point.force === true) cpSync(template, dir, { recursive: true });
    for (const changes of point.kills) {
      const killed = await killedAfter(changes, [...INIT, dir, ...(point.force === true ? ['--force'] : [])], cwd);
      expect(killed.signal, `killed after change ${changes}: ${killed.stderr}`).toBe('SIGKILL');
    }
    for (const entry of point.holds) expect(existsSync(join(dir, entry)), `holds ${entry}`).toBe(true);
    for (const entry of point.lacks) expect(existsSync(join(dir, entry)), `lacks ${entry}`).toBe(false);
    // The directory lock a killed --force run held is still fresh: the next run breaks it at once and says so.
    const lockLeft = existsSync(join(dir, LOCK));
    const before = snapshot(dir);
    const again = await meshauth([...INIT, dir], { cwd });
    const step = `${name}; then: exit ${again.code} ${again.stderr}`;
    if (point.outcome === 'refused') {
      expect(again.code, step).toBe(2);
      expect(again.stderr, step).toMatch(/^meshauth: a CA already exists in .*\[MESHAUTH_ERR_CA_EXISTS\]\n$/);
      // Nothing of the CA changed; what the killed run left (its marker, its staging directory) is gone.
      const untouched = Object.fromEntries(Object.entries(before).filter(([entry]) => !entry.startsWith('.ca-init')));
      expect(snapshot(dir), step).toEqual(untouched);
    } else {
      expect(again.code, step).toBe(0);
      const notices = lockLeft ? again.stderr.replace(BROKE_LOCK, '') : again.stderr;
      if (lockLeft) expect(again.stderr, step).toMatch(BROKE_LOCK);
      if (point.outcome === 'made, notice') expect(notices, step).toMatch(REPLACED);
      else expect(notices, step).toBe('');
    }
    await expectWorkingCa(dir, step);
  });
});

/** What `ca serve` loads fits together, keys are 0600, and nothing but the CA is left. */
async function expectWorkingCa(dir: string, step: string): Promise<void> {
  const material = await loadCaMaterial(dir).catch((error: unknown) => {
    throw new Error(`${step}: ${String(error)}`);
  });
  const root = new X509Certificate(readFileSync(join(dir, 'root.crt')));
  expect(root.checkPrivateKey(createPrivateKey(readFileSync(join(dir, 'root.key')))), step).toBe(true);
  expect(Buffer.from(material.root.rawData).equals(root.raw), step).toBe(true);
  expect(createPrivateKey(readFileSync(join(dir, 'jwt.key'))).asymmetricKeyType, step).toBe('ec');
  for (const key of ['root.key', 'intermediate.key', 'jwt.key']) {
    expect(statSync(join(dir, key)).mode & 0o777, `${step}: ${key}`).toBe(0o600);
  }
  expect(statSync(join(dir, 'tokens', 'used')).isDirectory(), step).toBe(true);
  const others = readdirSync(dir).filter((entry) => !CA_FILES.includes(entry) && entry !== 'tokens');
  for (const entry of others) {
    // A killed run's temporary copy of the marker (who it was): never a key, never a staged CA, never its lock.
    expect(entry, step).toMatch(/^\.[0-9a-f]{12}\.tmp$/);
    expect(readFileSync(join(dir, entry), 'utf8'), step).not.toMatch(/PRIVATE KEY/);
  }
}

/** Every entry of `dir` with its content, mode and mtime: equal snapshots mean nothing was written. */
function snapshot(dir: string): Record<string, string> {
  const entries: Record<string, string> = {};
  const walk = (path: string, prefix: string) => {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const full = join(path, entry.name);
      const stats = statSync(full);
      const content = entry.isFile() ? readFileSync(full, 'base64') : 'dir';
      entries[`${prefix}${entry.name}`] = `${(stats.mode & 0o7777).toString(8)} ${stats.mtimeMs} ${content}`;
      if (entry.isDirectory()) walk(full, `${prefix}${entry.name}/`);
    }
  };
  walk(dir, '');
  return entries;
}
