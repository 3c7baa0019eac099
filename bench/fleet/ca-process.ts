// A CA replica for the fleet bench: `meshauth ca serve` of the built CLI as its own process, its CPU time read
// from /proc and its counters from its admin listener's /metrics.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { caPodHeapFlags, imageNodeFlags } from '../image-node-flags.js';

export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const CLOCK_TICKS_PER_SECOND = 100;

export interface CaProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly port: number;
  readonly adminUrl: string;
  /** User + system CPU time of the process so far, in milliseconds (0 once it is gone). */
  cpuMs(): number;
  counter(name: string, labels: string): Promise<number>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Whether the built CLI knows a flag of `ca serve` (the bench also runs against builds from before it). */
export function serveSupports(flag: string): boolean {
  const help = execFileSync(process.execPath, [CLI, 'ca', 'serve', '--help'], { encoding: 'utf8' });
  return help.includes(flag);
}

/**
 * The Node flags of every CA replica: the image's and the heap bound of deploy/base's memory limit, as a replica
 * started from it runs; FLEET_CA_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") adds to them, and where it
 * repeats a flag, V8 takes its value (the last one given).
 */
export function caNodeArgs(): string[] {
  return [
    ...imageNodeFlags(),
    ...caPodHeapFlags(),
    ...(process.env.FLEET_CA_NODE_ARGS ?? '').split(' ').filter((a) => a !== ''),
  ];
}

export async function startCaProcess(args: readonly string[]): Promise<CaProcess> {
  const child = spawn(process.execPath, [...caNodeArgs(), CLI, 'ca', 'serve', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    if (stderr.length < 20_000) stderr += chunk.toString();
  });
  const { url, adminUrl } = await new Promise<{ url: string; adminUrl: string }>((resolve, reject) => {
    let buffered = '';
    let url: string | undefined;
    const timer = setTimeout(() => reject(new Error(`CA did not start: ${stderr.slice(-2000)}`)), 30_000);
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString();
      for (;;) {
        const newline = buffered.indexOf('\n');
        if (newline === -1) break;
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        const api = /^meshauth ca listening on (\S+)/.exec(line);
        const admin = /^meshauth ca admin listening on (\S+)/.exec(line);
        if (api) url = api[1];
        if (admin && url !== undefined) {
          clearTimeout(timer);
          // From here on stdout is only drained (its log lines are not part of the measurement).
          child.stdout?.off('data', onData);
          child.stdout?.resume();
          resolve({ url, adminUrl: admin[1] as string });
          return;
        }
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`CA exited (${code}): ${stderr.slice(-2000)}`)));
  });
  // The log lines go to stdout: keep draining it so the CA never blocks on a full pipe.
  child.stdout?.on('data', () => {});
  return {
    child,
    url,
    port: Number(new URL(url).port),
    adminUrl,
    cpuMs: () => processCpuMs(child.pid),
    counter: async (name, labels) => {
      const text = await fetch(`${adminUrl}/metrics`).then((r) => r.text());
      const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
      return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
    },
    kill: (signal = 'SIGTERM') =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) {
          resolve();
          return;
        }
        child.once('exit', () => resolve());
        child.kill(signal);
      }),
  };
}

export function processCpuMs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of proc(5) (utime, stime) are at 11 and 12 after the command name.
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** What both fleet benchmarks serve from: a read-only CA Secret and the cluster's service-account signing key. */
export interface StagedCa {
  /** `ca init` output without root.key, files 0444 and the folder 0555 (a mounted Secret: no join-token store). */
  readonly secretDir: string;
  /** The cluster's public JWKS, for `ca serve --k8s-jwks FILE`. */
  readonly jwksFile: string;
  readonly kid: string;
  /** The cluster key that signs service-account tokens (agent hosts get it as a JWK). */
  readonly privateKey: CryptoKey;
}

export async function stageCa(work: string, trustDomain: string): Promise<StagedCa> {
  const initDir = join(work, 'ca-init');
  execFileSync(process.execPath, [CLI, 'ca', 'init', '--trust-domain', trustDomain, '--dir', initDir], {
    stdio: 'ignore',
  });
  const secretDir = join(work, 'ca-secret');
  mkdirSync(secretDir);
  for (const file of ['root.crt', 'intermediate.crt', 'intermediate.key', 'bundle.pem', 'jwt.key']) {
    copyFileSync(join(initDir, file), join(secretDir, file));
    chmodSync(join(secretDir, file), 0o444);
  }
  chmodSync(secretDir, 0o555);
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  const jwksFile = join(work, 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...jwk, kid, use: 'sig', alg: 'RS256' }] }));
  return { secretDir, jwksFile, kid, privateKey };
}
