// A terminal planted at `ca.token` (a symlink to a pty whose master the planter holds) is refused like any other
// file that is not a regular file, and never becomes the sidecar's controlling terminal. The built sidecar runs as a
// container's entrypoint or a systemd service does: leading its own session, without a terminal. Opened without
// O_NOCTTY, the pty became its controlling terminal at the agent's next read, and closing the master (a hang-up)
// killed it by SIGHUP with no log line; the master's holder could also end it with ^C.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { capturedProcess, waitForCli } from '../helpers/cli-process.js';
import { assertBuilt, MAIN } from '../helpers/meshauth-cli.js';
import { CaHarness, type Cleanup, runCleanups } from '../integration/agent-harness.js';

const cleanups: Cleanup[] = [];
afterAll(() => runCleanups(cleanups));
beforeAll(() => assertBuilt(['src/platform', 'src/agent']));

// Node cannot open a pty pair itself (no ioctl); Python's pty module can, and holds the master until its stdin ends.
const PTY_HOLDER = `
import os, pty, sys
master, slave = pty.openpty()
print(os.ttyname(slave), flush=True)
os.close(slave)
sys.stdin.read()
`;
const python = spawnSync('python3', ['-c', 'import pty; pty.openpty()'], { timeout: 10_000 }).status === 0;

/** Field 7 of /proc/PID/stat (tty_nr: 0 = no controlling terminal) and field 6 (its session), after the comm. */
function terminalOf(pid: number): { session: number; ttyNr: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { session: Number(fields[3]), ttyNr: Number(fields[4]) };
}

/** Points `path` at `target` in one step, as a hostile writer of the directory would. */
function replaceWithSymlink(path: string, target: string): void {
  symlinkSync(target, `${path}.new`);
  renameSync(`${path}.new`, path);
}

describe.skipIf(process.platform !== 'linux' || !python)('a pty at ca.token', () => {
  it('fail/refused as not a regular file, never the controlling terminal; the sidecar outlives the hang-up', async () => {
    const ca = await CaHarness.start(3600_000, cleanups);
    const holder: ChildProcess = spawn('python3', ['-c', PTY_HOLDER], { stdio: ['pipe', 'pipe', 'inherit'] });
    cleanups.push(() => {
      if (holder.exitCode === null && holder.signalCode === null) holder.kill('SIGKILL');
    });
    const holderExited = new Promise<void>((resolve) => holder.on('exit', () => resolve()));
    const ttyPath = await new Promise<string>((resolve, reject) => {
      holder.stdout?.once('data', (chunk: Buffer) => resolve(chunk.toString().trim()));
      holder.once('exit', () => reject(new Error('the pty holder exited before it printed its terminal')));
    });
    expect(ttyPath).toMatch(/^\/dev\/pts\/\d+$/);

    const tokenFile = join(ca.dir, 'token');
    replaceWithSymlink(tokenFile, ttyPath);
    const configFile = join(ca.dir, 'sidecar.yaml');
    writeFileSync(
      configFile,
      [
        'trustDomain: example.org',
        `ca: { url: "${ca.url}", bundle: "${ca.bundleFile}", token: "${tokenFile}" }`,
        'inbound: { listen: "127.0.0.1:0", app: "127.0.0.1:1" }',
        'outbound: { listen: "127.0.0.1:0" }',
        'admin: { listen: "127.0.0.1:0" }',
      ].join('\n'),
    );
    // detached: the child calls setsid(), so it leads a session of its own without a terminal.
    const sidecar = capturedProcess(
      spawn(process.execPath, [MAIN, 'sidecar', '--config', configFile], {
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      }),
      cleanups,
    );
    const pid = sidecar.child.pid as number;

    const refusals = () =>
      sidecar.logs().filter((l) => l.msg === 'SVID bootstrap failed; no valid SVID, retrying' && l.key === 'ca.token');
    const [refusal] = await waitForCli(
      sidecar,
      'the agent to refuse the pty',
      () => refusals().length > 0,
      20_000,
    ).then(refusals);
    expect(refusal).toMatchObject({ code: 'MESHAUTH_ERR_FILE_UNREADABLE', reason: 'token_unreadable' });
    expect(String(refusal?.error)).toContain('not a regular file');
    expect(terminalOf(pid)).toEqual({ session: pid, ttyNr: 0 });

    // Hang up the pty, then give the agent a real token: it bootstraps, so it is alive and still retrying.
    holder.stdin?.end();
    await holderExited;
    const joinToken = join(ca.dir, 'join.token');
    writeFileSync(joinToken, await ca.token(), { mode: 0o600 });
    replaceWithSymlink(tokenFile, joinToken);
    await waitForCli(
      sidecar,
      'the SVID after the hang-up',
      () => sidecar.logs().some((l) => l.msg === 'SVID obtained'),
      20_000,
    );
    expect(terminalOf(pid).ttyNr).toBe(0);
  }, 30_000);
});
