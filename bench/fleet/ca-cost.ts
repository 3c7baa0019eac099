import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { fetchBundle, requestSvid, type SvidResponse } from '../../src/agent/ca-client.js';
import { TrustDomain } from '../../src/identity/index.js';
import { createCsrPem, exportPrivateKeyPem, generateKeyPair } from '../../src/pki/index.js';
import { stageCa, startCaProcess } from './ca-process.js';

/**
 * One number per thread of a process, summed by `key` (the main thread is "main"), read by `value` from the thread's
 * /proc/PID/task/TID directory and its stat line; a thread that ends while it is read is left out.
 */
function perThreadTotals(
  pid: number | undefined,
  value: (task: string, stat: string) => number,
  key: (name: string, tid: string) => string,
): Map<string, number> {
  const out = new Map<string, number>();
  if (pid === undefined) return out;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const task = `/proc/${pid}/task/${tid}`;
      const stat = readFileSync(`${task}/stat`, 'utf8');
      const name = tid === String(pid) ? 'main' : key(stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), tid);
      out.set(name, (out.get(name) ?? 0) + value(task, stat));
    } catch {
      // the thread ended
    }
  }
  return out;
}

/** CPU ms per thread of a process: main thread, signing workers, libuv pool, GC. */
function threadCpuMs(pid: number | undefined): Map<string, number> {
  return perThreadTotals(
    pid,
    (_task, stat) => {
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) * 10;
    },
    (name, tid) => `${name}-${tid}`,
  );
}

/**
 * Voluntary context switches per kind of thread: how often each slept and was woken. On these VMs a wake-up of an
 * idle thread costs a few hundred µs of CPU, so at a low request rate the count explains much of a renewal's cost.
 */
function threadWakeups(pid: number | undefined): Map<string, number> {
  return perThreadTotals(
    pid,
    (task) => Number(/^voluntary_ctxt_switches:\s*(\d+)$/m.exec(readFileSync(`${task}/status`, 'utf8'))?.[1] ?? 0),
    (name) => name,
  );
}

function perThread(before: Map<string, number>, after: Map<string, number>, n: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, ms] of after) {
    const delta = ms - (before.get(name) ?? 0);
    if (delta > 0) out[name] = Math.round((delta / n) * 100) / 100;
  }
  return out;
}

const TRUST_DOMAIN = TrustDomain.parse('fleet.test');
const K8S_ISSUER = 'https://kubernetes.default.svc.cluster.local';

export interface CaCostResult {
  readonly requests: number;
  readonly concurrency: number;
  /** Requests per second when paced (open loop), 0 when `concurrency` requests run back to back. */
  readonly rate: number;
  readonly workers: number;
  readonly bootstrapCpuMsPerSvid: number;
  readonly renewalCpuMsPerSvid: number;
  readonly bootstrapPerSecond: number;
  readonly renewalPerSecond: number;
  /** GET /v1/bundle over a fresh TLS connection without a client certificate, as an agent's refresh makes it. */
  readonly bundleCpuMsPerFetch: number;
  /** CPU ms per SVID by thread (main, signing workers, libuv pool, V8 helpers). */
  readonly bootstrapThreads: Record<string, number>;
  readonly renewalThreads: Record<string, number>;
  /** Voluntary context switches per renewal by thread: how often each thread slept and was woken. */
  readonly renewalWakeups: Record<string, number>;
}

interface Prepared {
  readonly csrPem: string;
  readonly keyPem: string;
}

async function prepare(n: number): Promise<Prepared[]> {
  const out: Prepared[] = [];
  for (let i = 0; i < n; i += 1) {
    const keys = await generateKeyPair('p256');
    out.push({ csrPem: await createCsrPem(keys), keyPem: await exportPrivateKeyPem(keys.privateKey) });
  }
  return out;
}

async function pool<T>(count: number, concurrency: number, task: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const index = next;
        next += 1;
        results[index] = await task(index);
      }
    }),
  );
  return results;
}

/** Open loop: task i starts at i / rate seconds, whether or not the earlier ones have finished. */
async function paced<T>(count: number, rate: number, task: (index: number) => Promise<T>): Promise<T[]> {
  const started = Date.now();
  const running: Promise<T>[] = [];
  for (let index = 0; index < count; index += 1) {
    const due = started + (index * 1000) / rate - Date.now();
    if (due > 0) await new Promise((resolve) => setTimeout(resolve, due));
    running.push(task(index));
  }
  return Promise.all(running);
}

export async function measureCaCost(n: number, concurrency: number, workers: number, rate = 0): Promise<CaCostResult> {
  const run = <T>(count: number, task: (index: number) => Promise<T>) =>
    rate > 0 ? paced(count, rate, task) : pool(count, concurrency, task);
  const work = mkdtempSync(join(tmpdir(), 'meshauth-cacost-'));
  const { secretDir, jwksFile, kid, privateKey } = await stageCa(work, TRUST_DOMAIN.name);
  const ca = await startCaProcess([
    '--dir',
    secretDir,
    '--listen',
    '127.0.0.1:0',
    '--admin-listen',
    '127.0.0.1:0',
    '--svid-ttl',
    '600s',
    '--k8s-issuer',
    K8S_ISSUER,
    '--k8s-jwks',
    jwksFile,
    '--workers',
    String(workers),
    '--max-queue',
    '100000',
  ]);
  try {
    const bundlePem = readFileSync(join(secretDir, 'bundle.pem'), 'utf8');
    const nowS = Math.floor(Date.now() / 1000);
    const tokens: string[] = [];
    for (let i = 0; i < n; i += 1) {
      tokens.push(
        await new SignJWT({
          aud: ['meshauth'],
          iss: K8S_ISSUER,
          sub: `system:serviceaccount:cost:wl-${i}`,
          'kubernetes.io': { namespace: 'cost', serviceaccount: { name: `wl-${i}`, uid: crypto.randomUUID() } },
          iat: nowS,
          nbf: nowS,
          exp: nowS + 3600,
        })
          .setProtectedHeader({ alg: 'RS256', kid })
          .sign(privateKey),
      );
    }
    const first = await prepare(n);
    const second = await prepare(n);
    const connection = { caUrl: ca.url, trustDomain: TRUST_DOMAIN, bundlePem };
    // Warm-up (JIT, the CA's lazy loads), not counted.
    await pool(Math.min(50, n), concurrency, (i) =>
      requestSvid(connection, { csrPem: first[i]?.csrPem as string, token: tokens[i] as string }),
    );

    let threads = threadCpuMs(ca.child.pid);
    let cpu = ca.cpuMs();
    let started = Date.now();
    const svids: SvidResponse[] = await run(n, (i) =>
      requestSvid(connection, { csrPem: first[i]?.csrPem as string, token: tokens[i] as string }),
    );
    const bootstrapCpu = ca.cpuMs() - cpu;
    const bootstrapSeconds = (Date.now() - started) / 1000;
    const bootstrapThreads = perThread(threads, threadCpuMs(ca.child.pid), n);
    threads = threadCpuMs(ca.child.pid);
    const wakeups = threadWakeups(ca.child.pid);

    cpu = ca.cpuMs();
    started = Date.now();
    await run(n, (i) =>
      requestSvid(
        {
          ...connection,
          clientCertPem: (svids[i] as SvidResponse).certChainPem.join(''),
          clientKeyPem: first[i]?.keyPem as string,
        },
        { csrPem: second[i]?.csrPem as string },
      ),
    );
    const renewalCpu = ca.cpuMs() - cpu;
    const renewalSeconds = (Date.now() - started) / 1000;
    const renewalThreads = perThread(threads, threadCpuMs(ca.child.pid), n);
    const renewalWakeups = perThread(wakeups, threadWakeups(ca.child.pid), n);

    cpu = ca.cpuMs();
    await run(n, () => fetchBundle(connection));
    const bundleCpu = ca.cpuMs() - cpu;
    return {
      requests: n,
      concurrency,
      rate,
      workers,
      bootstrapCpuMsPerSvid: Math.round((bootstrapCpu / n) * 100) / 100,
      renewalCpuMsPerSvid: Math.round((renewalCpu / n) * 100) / 100,
      bootstrapPerSecond: Math.round(n / bootstrapSeconds),
      renewalPerSecond: Math.round(n / renewalSeconds),
      bundleCpuMsPerFetch: Math.round((bundleCpu / n) * 100) / 100,
      bootstrapThreads,
      renewalThreads,
      renewalWakeups,
    };
  } finally {
    await ca.kill('SIGTERM');
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1]?.endsWith('ca-cost.js')) {
  const arg = (flag: string, fallback: number) => {
    const index = process.argv.indexOf(flag);
    return index === -1 ? fallback : Number(process.argv[index + 1]);
  };
  const result = await measureCaCost(arg('--n', 400), arg('--concurrency', 16), arg('--workers', 1), arg('--rate', 0));
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}
