// A throwaway PostgreSQL for tunnel tests: initdb into a temp dir (trust auth, no fsync), postgres on a free
// loopback port with its socket in the same dir, stopped by PID (SIGINT: fast shutdown). As root (containers) both
// run as the `postgres` user through setpriv, which execs in place, so the PID we hold is postgres itself.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';
import { available, run } from './tcp-client.js';
import { waitFor } from './wait.js';

export const HAVE_POSTGRES = available('initdb') && available('postgres') && available('psql');

export interface PostgresServer {
  readonly port: number;
  stop(): Promise<void>;
}

function asPostgres(command: string, args: readonly string[]): [string, string[]] {
  if (process.getuid?.() !== 0) return [command, [...args]];
  return ['setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', command, ...args]];
}

export async function startPostgres(): Promise<PostgresServer> {
  const dir = mkdtempSync(join(tmpdir(), 'meshauth-pg-'));
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  const data = join(dir, 'data');
  const [initCommand, initArgs] = asPostgres('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync']);
  const init = await run(initCommand, initArgs, { timeoutMs: 60_000 });
  if (init.code !== 0) throw new Error(`initdb failed: ${init.stderr.slice(-500)}`);
  const port = await freePort();
  const [command, args] = asPostgres('postgres', [
    '-D',
    data,
    '-p',
    String(port),
    '-k',
    dir,
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'fsync=off',
  ]);
  const child: ChildProcess = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGINT');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  await waitFor(
    `postgres answering on ${port}`,
    async () => {
      if (child.exitCode !== null) throw new Error(`postgres exited: ${output.slice(-500)}`);
      const ready = await run('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-Atc', 'select 1']);
      return ready.stdout.trim() === '1';
    },
    20_000,
    100,
  ).catch(async (error: Error) => {
    await stop();
    throw new Error(`${error.message}: ${output.slice(-500)}`);
  });
  return { port, stop };
}
