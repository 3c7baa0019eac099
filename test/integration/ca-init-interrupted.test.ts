// `initCa` over the directory a `ca init` left when it stopped midway (killed, a full disk): each state its write
// order can leave, laid out with real files, is replaced without --force (under the directory's lock), also when the
// dead run's pid now belongs to another process or a run that took it over failed too; a complete CA (also one whose
// run was killed before it removed its marker), a CA whose killed `--force` had not begun, or an init still running
// is refused; and a marker it cannot tell about from here (another host) counts as running until it is as old as a
// stale lock. Judging a process of this machine needs /proc: Linux only.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { initCa, loadCaMaterial } from '../../src/ca/index.js';
import { claimInit } from '../../src/ca/init-claim.js';
import { acquireRotationLock } from '../../src/ca/rotation-lock.js';
import { MeshauthError } from '../../src/errors/index.js';
import { type ProcessIdentity, parseProcStat, thisProcess } from '../../src/platform/process-identity.js';

/** The order `ca init` renames its staged files into the directory (store.ts), bundle.pem last. */
const PUBLISHED = ['jwt.key', 'root.key', 'root.crt', 'ca.json', 'intermediate.key', 'intermediate.crt', 'bundle.pem'];

const parent = mkdtempSync(join(tmpdir(), 'meshauth-ca-init-interrupted-'));
afterAll(() => rmSync(parent, { recursive: true, force: true }));

/** A complete CA to copy files from: the content of a run that was writing it. */
const template = join(parent, 'template');
/** A pid no process has any more: a child that ran and was waited for. */
let deadPid: number;
beforeAll(async () => {
  await initCa({ dir: template, trustDomain: 'example.org' });
  deadPid = spawnSync(process.execPath, ['-e', '']).pid ?? 0;
  expect(deadPid).toBeGreaterThan(0);
});

let count = 0;
function newDir(): string {
  count += 1;
  return join(parent, `dir-${count}`);
}

interface MarkerFields {
  /** Fields of the writer's identity, over those of this process with the dead child's pid. */
  readonly writer?: Partial<ProcessIdentity>;
  readonly begun?: boolean;
  /** Seconds since it was written. */
  readonly ageS?: number;
}

/** The marker a run writes (init-claim.ts), by default that of a dead run of this machine that had begun. */
function writeMarker(dir: string, fields: MarkerFields = {}): void {
  const file = join(dir, '.ca-init');
  const self = thisProcess();
  if (self === undefined) throw new Error('this process has no identity: no /proc');
  const holder = {
    token: randomBytes(16).toString('hex'),
    writer: { ...self, pid: deadPid, ...fields.writer },
    host: 'builder-7',
    begun: fields.begun ?? true,
  };
  writeFileSync(file, `${JSON.stringify(holder)}\n`, { mode: 0o600 });
  if (fields.ageS !== undefined) {
    const then = new Date(Date.now() - fields.ageS * 1000);
    utimesSync(file, then, then);
  }
}

/**
 * The directory a run killed after renaming the first `published` files leaves: those in place, the others still
 * in its staging directory (the last of them half-written), tokens/used made, its marker begun.
 */
function interruptedAfter(published: number): string {
  const dir = newDir();
  mkdirSync(join(dir, 'tokens', 'used'), { recursive: true, mode: 0o700 });
  mkdirSync(join(dir, '.ca-init.staging'), { mode: 0o700 });
  for (const [index, name] of PUBLISHED.entries()) {
    const into = index < published ? dir : join(dir, '.ca-init.staging');
    cpSync(join(template, name), join(into, name));
  }
  if (published < PUBLISHED.length) writeFileSync(join(dir, '.ca-init.staging', 'bundle.pem'), '-----BEGIN CERT');
  writeMarker(dir);
  return dir;
}

/** Field 22 of /proc/PID/stat: when `pid`'s process started. */
function startOf(pid: number): string {
  const start = parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.start;
  if (start === undefined) throw new Error(`no start time for pid ${pid}`);
  return start;
}

/** A child of this process that runs until the test ends. */
function liveChild(): ChildProcess {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  onTestFinished(() => {
    child.kill('SIGKILL');
  });
  return child;
}

async function initError(dir: string): Promise<MeshauthError> {
  const error = await initCa({ dir, trustDomain: 'example.org' }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MeshauthError);
  return error as MeshauthError;
}

/** The directory holds a CA `ca serve` loads, its keys 0600, no marker and no staging directory. */
async function expectWholeCa(dir: string): Promise<void> {
  const material = await loadCaMaterial(dir);
  expect(material.trustDomain.name).toBe('example.org');
  for (const key of ['root.key', 'intermediate.key', 'jwt.key'])
    expect(statSync(join(dir, key)).mode & 0o777).toBe(0o600);
  expect(readdirSync(dir).filter((entry) => entry.startsWith('.ca-init'))).toEqual([]);
}

const linux = process.platform === 'linux';

describe.runIf(linux)('initCa over what an interrupted ca init left', () => {
  it.each(PUBLISHED.map((name, index) => [index, PUBLISHED.slice(0, index).join(', ') || 'none', name]))(
    'ok/%i files renamed in (%s), the run dead → a new CA, without --force',
    async (published) => {
      const dir = interruptedAfter(published);
      await initCa({ dir, trustDomain: 'example.org' });
      await expectWholeCa(dir);
      // A CA of its own: nothing of the dead run's was kept.
      expect(readFileSync(join(dir, 'root.key'), 'utf8')).not.toBe(readFileSync(join(template, 'root.key'), 'utf8'));
    },
  );

  it('ok/killed twice: a run that took the dead one over was killed before its first change → the next run replaces it', async () => {
    const dir = interruptedAfter(3);
    // The second run: it takes the marker over, then dies before it changed a file (a kill leaves what abandon does).
    const second = await claimInit(dir);
    expect(second.interrupted).toBe(true);
    second.abandon();
    expect(JSON.parse(readFileSync(join(dir, '.ca-init'), 'utf8'))).toMatchObject({ begun: true });
    const made = await initCa({ dir, trustDomain: 'example.org' });
    await expectWholeCa(dir);
    expect(made.interruptedRun?.writer?.pid).toBe(process.pid);
  });

  it('ok/the directory lock is held (a `ca serve` rotating) → the replacement waits for it, then publishes', async () => {
    const dir = interruptedAfter(3);
    const lock = await acquireRotationLock(join(dir, '.intermediate-rotation.lock'));
    if (lock === undefined) throw new Error('lock not taken');
    const events: string[] = [];
    let startedWaiting = () => {};
    const waiting = new Promise<void>((resolve) => {
      startedWaiting = resolve;
    });
    const init = initCa({
      dir,
      trustDomain: 'example.org',
      directoryLock: {
        onWait: () => {
          events.push('waiting');
          startedWaiting();
        },
      },
    }).then(() => events.push('made'));
    await waiting;
    // Waiting, it has not begun: the dead run's files are as they were.
    expect(readFileSync(join(dir, 'root.key'), 'utf8')).toBe(readFileSync(join(template, 'root.key'), 'utf8'));
    events.push('released');
    await lock.release();
    await init;
    expect(events).toEqual(['waiting', 'released', 'made']);
    await expectWholeCa(dir);
  });

  it('ok/a half-made CA is named as one by what reads it: MESHAUTH_ERR_CA_NOT_INITIALIZED, run ca init again', async () => {
    const dir = interruptedAfter(2);
    const error = await loadCaMaterial(dir).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'MESHAUTH_ERR_CA_NOT_INITIALIZED', reason: 'missing_file' });
    expect((error as Error).message).toMatch(
      /\(.*intermediate\.(crt|key) is missing; a `meshauth ca init` there has not finished\): run `meshauth ca init --trust-domain <td> --dir .*` again$/,
    );
  });

  it('ok/a run that failed in this process (a file it could not rename into place) → the next run replaces it', async () => {
    const dir = newDir();
    mkdirSync(join(dir, 'bundle.pem'), { recursive: true }); // renaming a file onto a directory fails (EISDIR)
    const failed = await initCa({ dir, trustDomain: 'example.org' }).catch((e: unknown) => e);
    expect((failed as NodeJS.ErrnoException).path).toBe(join(dir, 'bundle.pem'));
    expect(existsSync(join(dir, '.ca-init'))).toBe(true);
    rmSync(join(dir, 'bundle.pem'), { recursive: true });
    await initCa({ dir, trustDomain: 'example.org' });
    await expectWholeCa(dir);
  });

  it('ok/the pid of the dead run now belongs to another process (another start time) → a new CA, without --force', async () => {
    const other = liveChild();
    const pid = other.pid as number;
    const dir = interruptedAfter(3);
    writeMarker(dir, { writer: { pid, start: String(BigInt(startOf(pid)) + 1n) } });
    await initCa({ dir, trustDomain: 'example.org' });
    await expectWholeCa(dir);
    // Not mistaken for the run, and left alone.
    expect(() => process.kill(pid, 0)).not.toThrow();
  });

  it('ok/the pid of the dead run is now this process (another start time) → a new CA, without --force', async () => {
    const dir = interruptedAfter(3);
    writeMarker(dir, { writer: { pid: process.pid, start: '1' } });
    await initCa({ dir, trustDomain: 'example.org' });
    await expectWholeCa(dir);
  });

  it('ok/a marker from another host, 61 s old → taken as a run that died', async () => {
    const dir = interruptedAfter(3);
    writeMarker(dir, { writer: { boot: 'ffffffff-0000-0000-0000-000000000000', pid: process.pid }, ageS: 61 });
    await initCa({ dir, trustDomain: 'example.org' });
    await expectWholeCa(dir);
  });
});

describe.runIf(linux)('initCa refuses what it must not replace', () => {
  it('fail/a complete CA → MESHAUTH_ERR_CA_EXISTS (exists), nothing written', async () => {
    const dir = newDir();
    cpSync(template, dir, { recursive: true });
    const error = await initError(dir);
    expect(error).toMatchObject({ code: 'MESHAUTH_ERR_CA_EXISTS', reason: 'exists' });
    expect(error.message).toBe(
      `a CA already exists in ${dir} (${join(dir, 'root.crt')}); pass --force to replace it, which invalidates ` +
        'every certificate it issued',
    );
    expect(readdirSync(dir).sort()).toEqual(readdirSync(template).sort());
  });

  it('fail/every file renamed in, the marker not yet removed (killed before its last step) → that CA is kept: refused', async () => {
    const dir = interruptedAfter(PUBLISHED.length);
    const error = await initError(dir);
    expect(error).toMatchObject({ code: 'MESHAUTH_ERR_CA_EXISTS', reason: 'exists' });
    expect(readFileSync(join(dir, 'root.key'), 'utf8')).toBe(readFileSync(join(template, 'root.key'), 'utf8'));
    expect(readdirSync(dir).filter((entry) => entry.startsWith('.ca-init'))).toEqual([]);
    await loadCaMaterial(dir);
  });

  it('fail/a takeover lock left by a run that died → init_in_progress naming the lock and its 60 s', async () => {
    const dir = interruptedAfter(3);
    writeFileSync(join(dir, '.ca-init.takeover'), 'dead\n');
    const error = await initError(dir);
    expect(error).toMatchObject({ code: 'MESHAUTH_ERR_CA_EXISTS', reason: 'init_in_progress' });
    expect(error.message).toContain(`(${join(dir, '.ca-init.takeover')} is held)`);
    expect(error.message).toContain('at once by a run in the same boot, PID and time namespace, after 60 s otherwise');
  });

  it.each([
    ['a directory', (path: string) => mkdirSync(path)],
    ['a link to nowhere', (path: string) => symlinkSync(join(parent, 'nowhere'), path)],
  ])('fail/%s at .ca-init → refused, naming it and to remove it', async (_, make) => {
    const dir = newDir();
    mkdirSync(dir);
    make(join(dir, '.ca-init'));
    const error = await initError(dir);
    expect(error).toMatchObject({ code: 'MESHAUTH_ERR_CA_EXISTS' });
    expect(error.message).toMatch(new RegExp(`^${join(dir, '.ca-init')} is not a marker .*: remove it and run`));
  });

  it('fail/a dead run had not begun (killed before its first change) over a CA → that CA is refused; the marker goes', async () => {
    const dir = newDir();
    cpSync(template, dir, { recursive: true });
    writeMarker(dir, { begun: false });
    const error = await initError(dir);
    expect(error).toMatchObject({ code: 'MESHAUTH_ERR_CA_EXISTS', reason: 'exists' });
    expect(readFileSync(join(dir, 'root.key'), 'utf8')).toBe(readFileSync(join(template, 'root.key'), 'utf8'));
    expect(existsSync(join(dir, '.ca-init'))).toBe(false);
  });

  it('fail/files of a CA without a marker (an earlier version stopped after root.key) → refused, naming what is missing and --force', async () => {
    const dir = newDir();
    mkdirSync(dir, { mode: 0o700 });
    cpSync(join(template, 'root.key'), join(dir, 'root.key'));
    const error = await initError(dir);
    expect(error).toMatchObject({ code: 'MESHAUTH_ERR_CA_EXISTS', reason: 'exists' });
    expect(error.message).toBe(
      `a CA already exists in ${dir} (${join(dir, 'root.key')}), without intermediate.crt, intermediate.key, ` +
        'bundle.pem (what a `meshauth ca init` of an earlier version stopped there leaves); pass --force to replace ' +
        'it, which invalidates every certificate it issued',
    );
    await initCa({ dir, trustDomain: 'example.org', force: true });
    await expectWholeCa(dir);
  });

  it('fail/a run on another host, 5 s ago → MESHAUTH_ERR_CA_EXISTS (init_in_progress) naming it; nothing changed', async () => {
    const dir = interruptedAfter(3);
    writeMarker(dir, { writer: { boot: 'ffffffff-0000-0000-0000-000000000000', pid: 4242 }, ageS: 5 });
    const before = readdirSync(dir).sort();
    const error = await initError(dir);
    expect(error).toMatchObject({ code: 'MESHAUTH_ERR_CA_EXISTS', reason: 'init_in_progress' });
    expect(error.message).toMatch(
      new RegExp(`^another \`meshauth ca init\` \\(pid 4242 on builder-7\\) is creating a CA in ${dir}: `),
    );
    expect(readdirSync(dir).sort()).toEqual(before);
  });

  it('fail/a run of this machine whose process still runs → init_in_progress; replaced once it has gone', async () => {
    const live = liveChild();
    const gone = new Promise((resolve) => live.once('exit', resolve));
    const pid = live.pid as number;
    const dir = interruptedAfter(1);
    writeMarker(dir, { writer: { pid, start: startOf(pid) } });
    const error = await initError(dir);
    expect(error).toMatchObject({ code: 'MESHAUTH_ERR_CA_EXISTS', reason: 'init_in_progress' });
    expect(error.message).toContain(`(pid ${pid} on builder-7)`);
    live.kill('SIGKILL');
    await gone;
    await initCa({ dir, trustDomain: 'example.org' });
    await expectWholeCa(dir);
  });
});
