// The built CLI as a child process for fault tests: spawned with its output captured (JSON log lines parsed on
// demand), ended by PID, and scraped over its admin /metrics. Every spawn registers its SIGKILL with the caller's
// cleanup list, so a failing test never leaves a process behind.
import { type ChildProcess, spawn } from 'node:child_process';
import { request } from 'undici';
import { MAIN } from './meshauth-cli.js';
import { waitFor } from './wait.js';

export { freePort } from './free-port.js';

export interface CliProcess {
  readonly child: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** The JSON log lines so far (other lines skipped). */
  logs(): Record<string, unknown>[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** True while the process has not exited. */
  alive(): boolean;
}

export function spawnCli(
  args: readonly string[],
  cleanups: (() => Promise<void> | void)[],
  env: NodeJS.ProcessEnv = process.env,
): CliProcess {
  return capturedProcess(
    spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env }),
    cleanups,
  );
}

/**
 * `meshauth ca serve --dir DIR` on 127.0.0.1:0 that mints its next 1 h intermediate at half-life, as a replica run
 * with --auto-rotate-intermediate does (give it an intermediate past half its life and it rotates within a second).
 */
export function spawnAutoRotatingServe(
  dir: string,
  cleanups: (() => Promise<void> | void)[],
  env: NodeJS.ProcessEnv = process.env,
): CliProcess {
  const args = ['ca', 'serve', '--dir', dir, '--listen', '127.0.0.1:0', '--auto-rotate-intermediate'];
  return spawnCli([...args, '--intermediate-ttl', '1h'], cleanups, env);
}

/** A spawned child with its stdout and stderr captured, SIGKILLed by `cleanups` if it is still alive then. */
export function capturedProcess(child: ChildProcess, cleanups: (() => Promise<void> | void)[]): CliProcess {
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const alive = () => child.exitCode === null && child.signalCode === null;
  cleanups.push(() => {
    if (alive() && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  });
  return {
    child,
    output: () => output,
    logs: () =>
      output
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .flatMap((line) => {
          try {
            return [JSON.parse(line) as Record<string, unknown>];
          } catch {
            return [];
          }
        }),
    exited,
    alive,
  };
}

/**
 * Polls `check` every 50 ms until it returns a truthy value. Fails at once when the process has exited, and after
 * `timeoutMs` otherwise; either way the error carries the end of what the process printed.
 */
export async function waitForCli<T>(
  cli: CliProcess,
  what: string,
  check: () => T | Promise<T>,
  timeoutMs: number,
): Promise<NonNullable<T>> {
  try {
    return await waitFor(
      what,
      () => {
        if (cli.alive()) return check();
        throw new Error(`the process exited (${cli.child.exitCode ?? cli.child.signalCode}) while waiting for ${what}`);
      },
      timeoutMs,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; its output:\n${cli.output().slice(-3000)}`);
  }
}

/** The sum of the samples of `name` whose labels include every `labels` fragment, from an admin /metrics. */
export async function scrapeMetric(adminPort: number, name: string, ...labels: string[]): Promise<number> {
  const response = await request(`http://127.0.0.1:${adminPort}/metrics`);
  const text = await response.body.text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (labels.every((label) => line.includes(label))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
