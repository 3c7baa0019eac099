// Child processes that take a key pair's lock through the real module (the build in dist/, as the CLI does), for the
// tests of a lock whose holder ended: a holder that keeps it until its stdin closes or it is SIGKILLed, and a taker
// that waits at a start gate so that several reach one lock at the same moment. Each is ended by PID at cleanup.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type CliProcess, capturedProcess, waitForCli } from './cli-process.js';
import { ROOT } from './meshauth-cli.js';

const MODULE = pathToFileURL(join(ROOT, 'dist/src/cli/key-pair-lock.js')).href;

const HOLDER = `
const { withKeyPairLock } = await import(process.argv[1]);
await withKeyPairLock(process.argv[2], async () => {
  process.stdout.write('held\\n');
  await new Promise((resolve) => { process.stdin.on('end', resolve).resume(); });
});
process.stdout.write('released\\n');
`;

// The action appends "enter PID" and "exit PID" to a shared file around a few turns of the event loop: two actions
// that overlapped would interleave their lines.
const TAKER = `
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
const { withKeyPairLock } = await import(process.argv[1]);
const [, , key, gate, log] = process.argv;
process.stdout.write('ready\\n');
const deadline = Date.now() + 30_000;
while (!existsSync(gate)) {
  if (Date.now() > deadline) throw new Error('the start gate never opened');
  await new Promise((resolve) => setTimeout(resolve, 2));
}
await withKeyPairLock(key, async () => {
  appendFileSync(log, 'enter ' + process.pid + '\\n');
  for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
  readFileSync(log);
  appendFileSync(log, 'exit ' + process.pid + '\\n');
});
process.stdout.write('done\\n');
`;

/** `wrapper` (e.g. `['unshare', '--time', …]`) runs node in another namespace; by default node runs directly. */
function node(
  script: string,
  args: readonly string[],
  cleanups: (() => Promise<void> | void)[],
  wrapper: readonly string[] = [],
): CliProcess {
  const argv = [process.execPath, '--input-type=module', '-e', script, '--', MODULE, ...args];
  const [command, ...rest] = [...wrapper, ...argv] as [string, ...string[]];
  const child = spawn(command, rest, { stdio: ['pipe', 'pipe', 'pipe'] });
  return capturedProcess(child, cleanups);
}

export interface LockHolder extends CliProcess {
  readonly pid: number;
  /** Lets the holder release the lock and exit. */
  finish(): void;
}

/** A process holding the lock of the pair whose key is `key`, once this resolves (run under `wrapper`, if given). */
export async function holdKeyPairLock(
  key: string,
  cleanups: (() => Promise<void> | void)[],
  wrapper: readonly string[] = [],
): Promise<LockHolder> {
  const holder = node(HOLDER, [key], cleanups, wrapper);
  await waitForCli(holder, 'the child to hold the lock', () => holder.output().includes('held\n'), 15_000);
  const pid = holder.child.pid as number;
  return Object.assign(holder, { pid, finish: () => holder.child.stdin?.end() });
}

/** A process that takes the lock once `gate` exists, and appends its turn to `log`; ready once this resolves. */
export async function keyPairLockTaker(
  key: string,
  gate: string,
  log: string,
  cleanups: (() => Promise<void> | void)[],
): Promise<CliProcess> {
  const taker = node(TAKER, [key, gate, log], cleanups);
  await waitForCli(taker, 'the taker to be ready', () => taker.output().includes('ready\n'), 15_000);
  return taker;
}
