// Child processes of the benchmark (app, proxies, load workers): spawned directly (no shell, so the PID we hold is
// the process we measure), tracked in one registry and killed by PID on stop, on error, on Ctrl-C and at exit.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { createInterface } from 'node:readline';

export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly process: ChildProcess;
  /** The last lines of stderr, for error messages. */
  stderrTail(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<Child>();
/** PIDs of grandchildren we also own (nginx workers), killed with their master. */
const extraPids = new Set<number>();

export function spawnChild(name: string, command: string, args: readonly string[], cwd?: string): Child {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(cwd === undefined ? {} : { cwd }) });
  if (child.pid === undefined) throw new Error(`${name}: could not start ${command}`);
  const pid = child.pid;
  const tail: string[] = [];
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    tail.push(chunk);
    if (tail.length > 20) tail.shift();
  });
  const exited = once(child, 'exit').then(() => undefined);
  let stopping: Promise<void> | undefined;
  const handle: Child = {
    name,
    pid,
    process: child,
    stderrTail: () => tail.join('').trim().split('\n').slice(-8).join('\n'),
    stop: (graceMs = 3_000) => {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          signal(pid, 'SIGTERM');
          const timer = setTimeout(() => signal(pid, 'SIGKILL'), graceMs);
          await exited;
          clearTimeout(timer);
        }
        live.delete(handle);
      })();
      return stopping;
    },
  };
  child.on('error', () => undefined); // reported through exit / readiness timeouts
  live.add(handle);
  return handle;
}

export function trackExtraPid(pid: number): void {
  extraPids.add(pid);
}

/** Resolves with the first stdout line that parses as a JSON object; rejects if the child exits first. */
export async function firstJsonLine<T>(child: Child, timeoutMs: number): Promise<T> {
  const stdout = child.process.stdout;
  if (stdout === null) throw new Error(`${child.name}: no stdout`);
  const lines = createInterface({ input: stdout });
  try {
    return await new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${child.name}: not ready after ${timeoutMs} ms. ${child.stderrTail()}`)),
        timeoutMs,
      );
      child.process.once('exit', (code, sig) => {
        clearTimeout(timer);
        reject(new Error(`${child.name}: exited (${code ?? sig}) before it was ready. ${child.stderrTail()}`));
      });
      lines.on('line', (line) => {
        if (!line.startsWith('{')) return;
        clearTimeout(timer);
        resolve(JSON.parse(line) as T);
      });
    });
  } finally {
    lines.close();
  }
}

/** A port that was free a moment ago (for configs that need a number up front: HAProxy, nginx). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Polls a TCP connect to 127.0.0.1:port until it succeeds (the peers print nothing when ready). */
export async function waitForPort(port: number, child: Child, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; Date.now() < deadline; attempt++) {
    if (child.process.exitCode !== null) throw new Error(`${child.name} exited: ${child.stderrTail()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, Math.min(200, 20 * (attempt + 1))));
  }
  throw new Error(`${child.name}: port ${port} not open after ${timeoutMs} ms. ${child.stderrTail()}`);
}

export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((child) => child.stop()));
  for (const pid of extraPids) signal(pid, 'SIGKILL');
  extraPids.clear();
}

/** Kills everything synchronously: for `exit` and signal handlers, where no await can run. */
export function killAllNow(): void {
  for (const child of live) signal(child.pid, 'SIGKILL');
  for (const pid of extraPids) signal(pid, 'SIGKILL');
}

let installed = false;
/** On Ctrl-C / SIGTERM: kill every child by PID, then exit 130/143. On any exit: the same, synchronously. */
export function installCleanup(): void {
  if (installed) return;
  installed = true;
  process.on('exit', killAllNow);
  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.once(sig, () => {
      process.stderr.write(`\nbench: ${sig}, stopping children\n`);
      killAllNow();
      process.exit(code);
    });
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}
