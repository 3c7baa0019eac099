// A throwaway redis-server for tunnel tests: loopback, a free port, a temp dir, no persistence
// (`--save '' --appendonly no`), stopped by PID. Skips cleanly when redis is not installed.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';
import { available, run } from './tcp-client.js';
import { waitFor } from './wait.js';

export const HAVE_REDIS = available('redis-server') && available('redis-cli');

export interface RedisServer {
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'meshauth-redis-'));
  const port = await freePort();
  const child: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  await waitFor(
    `redis-server answering on ${port}`,
    async () => {
      if (child.exitCode !== null) throw new Error(`redis-server exited: ${output.slice(-500)}`);
      const ping = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'PING'], { timeoutMs: 2_000 });
      return ping.stdout.trim() === 'PONG';
    },
    10_000,
  ).catch(async (error: Error) => {
    await stop();
    throw new Error(`${error.message}: ${output.slice(-500)}`);
  });
  return { port, pid: child.pid ?? 0, stop };
}
