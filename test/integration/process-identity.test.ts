// Whether a recorded process still runs, judged against real processes through /proc: this one runs, a child that
// exited has ended, a zombie (exited, never reaped by its parent) has ended, and a record naming a live pid with
// another start time is a process that ended and whose pid was reused.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { parseProcStat, processState, thisProcess } from '../../src/platform/process-identity.js';
import { waitFor } from '../helpers/wait.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

function killOnCleanup(pid: number | undefined): void {
  cleanups.push(() => {
    if (pid === undefined) return;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  });
}

const startOf = (pid: number) => parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.start ?? '';

describe.runIf(process.platform === 'linux')('processState', () => {
  it('ok/this process has an identity of this pid, and runs', () => {
    const self = thisProcess();
    expect(self).toMatchObject({ pid: process.pid, pidNamespace: expect.stringMatching(/^pid:\[\d+\]$/) });
    expect(self?.start).toBe(startOf(process.pid));
    expect(processState(self as NonNullable<typeof self>, self)).toBe('running');
  });

  it('ok/a child that runs, then exits: running, then ended', async () => {
    const self = thisProcess();
    const child = spawn(process.execPath, ['-e', 'process.stdin.resume()'], { stdio: ['pipe', 'ignore', 'ignore'] });
    killOnCleanup(child.pid);
    const pid = child.pid as number;
    const recorded = { ...(self as NonNullable<typeof self>), pid, start: startOf(pid) };
    expect(processState(recorded, self)).toBe('running');
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.stdin.end();
    await exited;
    expect(processState(recorded, self)).toBe('ended');
  });

  it('ok/a zombie (exited, its parent never reaps it) has ended', async () => {
    const self = thisProcess();
    // `head` waits in the background for a byte on fd 3; its parent then becomes `sleep`, which never waits for it.
    const parent = spawn('sh', ['-c', 'head -c 1 <&3 >/dev/null & echo $!; exec sleep 30'], {
      stdio: ['ignore', 'pipe', 'ignore', 'pipe'],
    });
    killOnCleanup(parent.pid);
    let out = '';
    parent.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    const pid = Number(await waitFor('the background pid', () => out.match(/^(\d+)\n/)?.[1]));
    await waitFor('the shell to become sleep', () =>
      readFileSync(`/proc/${parent.pid}/stat`, 'utf8').includes('(sleep)'),
    );
    (parent.stdio[3] as Writable).end('x');
    const stat = await waitFor('the zombie', () => {
      const read = parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      return read?.state === 'Z' ? read : undefined;
    });
    expect(processState({ ...(self as NonNullable<typeof self>), pid, start: stat.start }, self)).toBe('ended');
  });

  it('ok/a live pid with another start time is another process: the recorded one ended (pid reused)', () => {
    const self = thisProcess() as NonNullable<ReturnType<typeof thisProcess>>;
    expect(processState({ ...self, start: String(BigInt(self.start) + 1n) }, self)).toBe('ended');
  });
});
