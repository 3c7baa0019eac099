// Runs the built CLI (`node dist/src/cli/main.js`) for the CA and cert e2e tests. `npm ci` builds dist/ (prepare);
// after editing sources run `npm run build`. The check below fails with a clear message on a missing or stale build.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = new URL('../..', import.meta.url).pathname;
export const MAIN = join(ROOT, 'dist/src/cli/main.js');

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Throws unless dist/ exists and is newer than the sources these tests exercise. */
export function assertBuilt(sources: readonly string[] = ['src/ca', 'src/cli/ca.ts', 'src/cli/cert.ts']): void {
  if (!existsSync(MAIN)) {
    throw new Error(`${MAIN} is missing: run \`npm run build\` (npm ci does it) before the e2e tests`);
  }
  const built = statSync(MAIN).mtimeMs;
  const newest = Math.max(...sources.map((s) => newestMtime(join(ROOT, s))));
  const distCa = statSync(join(ROOT, 'dist/src/cli/ca.js')).mtimeMs;
  if (newest > Math.max(built, distCa)) {
    throw new Error('dist/ is older than src/: run `npm run build` before the e2e tests');
  }
}

function newestMtime(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((name) => newestMtime(join(path, name))));
}

export function meshauth(args: readonly string[], options: { cwd: string; input?: string }): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [MAIN, ...args],
      { cwd: options.cwd, timeout: 30_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/**
 * Set-up commands in steps: the commands of one step run side by side (a busy machine runs a dozen CLI starts in a
 * row past a hook's timeout), the steps one after another; any command that fails stops the set-up with its stderr.
 */
export async function meshauthSteps(steps: readonly (readonly string[])[][], cwd: string): Promise<void> {
  for (const step of steps) {
    const results = await Promise.all(step.map((args) => meshauth(args, { cwd })));
    for (const [index, result] of results.entries()) {
      if (result.code !== 0) {
        throw new Error(`meshauth ${step[index]?.join(' ')} exited ${result.code}:\n${result.stderr}`);
      }
    }
  }
}

export interface RunningCli {
  readonly child: ChildProcess;
  readonly stderr: () => string;
  /** The first stdout line matching `pattern` (waits up to 15 s). */
  readonly line: (pattern: RegExp) => Promise<string>;
  /** SIGTERM and wait for the exit code. */
  readonly stop: () => Promise<number | null>;
}

export function spawnMeshauth(args: readonly string[], options: { cwd: string }): RunningCli {
  const child = spawn(process.execPath, [MAIN, ...args], { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    stderr: () => stderr,
    line: (pattern) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          child.stdout.off('data', check);
          reject(new Error(`no stdout line matching ${pattern} within 15 s; stderr:\n${stderr}`));
        }, 15_000);
        const check = (): void => {
          const found = stdout.split('\n').find((l) => pattern.test(l));
          if (found !== undefined) {
            clearTimeout(timer);
            child.stdout.off('data', check);
            resolve(found);
          }
        };
        child.stdout.on('data', check);
        check();
        void exited.then(() => setTimeout(check, 0));
      }),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

export interface ServeCaOptions {
  /**
   * The flags after `--listen 127.0.0.1:0`, in place of the default `--svid-ttl 10m` (pass `--svid-ttl` again if the
   * test needs it alongside others); `--dir` here serves another CA directory.
   */
  readonly args?: readonly string[];
}

/**
 * `ca serve --listen 127.0.0.1:0 --svid-ttl 10m` (or `options.args` in place of `--svid-ttl 10m`) over the CA directory
 * `certs` of `cwd` (made by `ca init` there), and the URL it printed once listening. Stop it with `serve.stop()`.
 */
export async function serveCa(cwd: string, options: ServeCaOptions = {}): Promise<{ serve: RunningCli; url: string }> {
  const args = options.args ?? ['--svid-ttl', '10m'];
  const serve = spawnMeshauth(['ca', 'serve', '--listen', '127.0.0.1:0', ...args], { cwd });
  try {
    const url = (await serve.line(/^meshauth ca listening on /)).replace('meshauth ca listening on ', '').trim();
    return { serve, url };
  } catch (error) {
    // The caller never gets this handle, so its afterAll cannot end a CA that did not print its URL in time.
    await serve.stop();
    throw error;
  }
}
