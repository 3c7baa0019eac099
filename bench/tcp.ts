// TCP bulk transfer through a tunnel pair (mutual TLS for any TCP protocol): one connection moves N MiB up
// (client → app) and N MiB down (app → client), for direct, a stunnel pair and a meshauth pair, in the same run.
// Reported per pair: MiB/s each way and CPU µs per MiB moved for the outbound and the inbound process.
// The app and the client run in the runner's process (not measured); each proxy is its own process.
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { BenchPki } from './bench-pki.js';
import { freePort, spawnChild, waitForPort } from './children.js';
import { cpuTimeUs } from './load.js';
import { findBinary } from './peers.js';
import { startTcpSide } from './tcp-pair.js';

export interface TcpBenchRow {
  readonly name: string;
  readonly version?: string;
  readonly unavailable?: string;
  readonly upMiBps?: number;
  readonly downMiBps?: number;
  /** CPU time per MiB moved (up + down), µs, per process. */
  readonly cpuUsPerMiB?: { readonly outbound: number; readonly inbound: number };
}

export interface TcpBenchResult {
  readonly name: string;
  /** MiB each way per scenario. */
  readonly mib: number;
  readonly tls: string;
  readonly rows: readonly TcpBenchRow[];
}

export interface TunnelPair {
  readonly port: number;
  readonly outboundPid: number;
  readonly inboundPid: number;
  readonly version: string;
  stop(): Promise<void>;
}

const MiB = 1024 * 1024;
const CHUNK = Buffer.alloc(MiB, 0x61);

export async function benchTcp(options: { quick: boolean; pki: BenchPki; dir: string }): Promise<TcpBenchResult> {
  const mib = options.quick ? 64 : 512;
  const app = await startBulkApp();
  try {
    const scenarios: [string, (() => Promise<TunnelPair>) | undefined][] = [
      ['direct', undefined],
      ['stunnel', () => startStunnelPair(options.dir, options.pki, app.port)],
      ['meshauth', () => startMeshauthTcpPair(options.pki, app.port)],
    ];
    const rows: TcpBenchRow[] = [];
    for (const [name, start] of scenarios) rows.push(await measure(name, start, app.port, mib));
    return { name: 'tcp bulk transfer', mib, tls: 'TLS 1.3 mTLS, ECDSA P-256 SVIDs', rows };
  } finally {
    await new Promise<void>((resolve) => app.server.close(() => resolve()));
  }
}

async function measure(
  name: string,
  start: (() => Promise<TunnelPair>) | undefined,
  appPort: number,
  mib: number,
): Promise<TcpBenchRow> {
  let pair: TunnelPair | undefined;
  try {
    pair = start === undefined ? undefined : await start();
    const port = pair?.port ?? appPort;
    await upload(port, 8); // warm-up: connections, JIT, buffers
    await download(port, 8);
    const pids = pair === undefined ? [] : [pair.outboundPid, pair.inboundPid];
    const cpuBefore = pids.map(cpuTimeUs);
    const upSec = await upload(port, mib);
    const downSec = await download(port, mib);
    const cpu = pids.map((pid, i) => (cpuTimeUs(pid) - (cpuBefore[i] ?? Number.NaN)) / (2 * mib));
    return {
      name,
      ...(pair === undefined ? {} : { version: pair.version }),
      upMiBps: mib / upSec,
      downMiBps: mib / downSec,
      ...(pair === undefined ? {} : { cpuUsPerMiB: { outbound: cpu[0] ?? Number.NaN, inbound: cpu[1] ?? Number.NaN } }),
    };
  } catch (error) {
    return { name, unavailable: (error instanceof Error ? error.message : String(error)).slice(0, 300) };
  } finally {
    await pair?.stop();
  }
}

// ---- the app and the client: 'U' + u64 length → the app reads that many bytes and answers 'K';
// 'D' + u64 length → the app sends that many bytes and ends. ------------------------------------------------------

interface BulkApp {
  readonly server: Server;
  readonly port: number;
}

async function startBulkApp(): Promise<BulkApp> {
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    let header = Buffer.alloc(0);
    let left = -1;
    const onData = (chunk: Buffer): void => {
      if (left < 0) {
        header = Buffer.concat([header, chunk]);
        if (header.length < 9) return;
        const kind = String.fromCharCode(header[0] ?? 0);
        left = Number(header.readBigUInt64BE(1));
        const rest = header.subarray(9);
        if (kind === 'D') {
          socket.off('data', onData);
          void send(socket, left).then(() => socket.end());
          return;
        }
        chunk = rest;
      }
      left -= chunk.length;
      if (left === 0) socket.end('K');
    };
    socket.on('data', onData);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

async function send(socket: Socket, bytes: number): Promise<void> {
  let left = bytes;
  while (left > 0) {
    const chunk = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
    left -= chunk.length;
    if (!socket.write(chunk)) await once(socket, 'drain');
  }
}

function header(kind: 'U' | 'D', bytes: number): Buffer {
  const buffer = Buffer.alloc(9);
  buffer.write(kind, 0, 'latin1');
  buffer.writeBigUInt64BE(BigInt(bytes), 1);
  return buffer;
}

/** Seconds to move `mib` MiB client → app (until the app's acknowledgement). */
async function upload(port: number, mib: number): Promise<number> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const started = performance.now();
  const acked = new Promise<void>((resolve, reject) => {
    socket.once('data', () => resolve());
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('closed before the app acknowledged the upload')));
  });
  socket.write(header('U', mib * MiB));
  await send(socket, mib * MiB);
  await acked;
  const seconds = (performance.now() - started) / 1000;
  socket.destroy();
  return seconds;
}

/** Seconds to move `mib` MiB app → client (until the app's FIN). */
async function download(port: number, mib: number): Promise<number> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const started = performance.now();
  let bytes = 0;
  socket.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
  });
  const ended = new Promise<void>((resolve, reject) => {
    socket.once('end', () => resolve());
    socket.once('error', reject);
  });
  socket.write(header('D', mib * MiB));
  await ended;
  const seconds = (performance.now() - started) / 1000;
  socket.destroy();
  if (bytes !== mib * MiB) throw new Error(`download: ${bytes} bytes instead of ${mib * MiB}`);
  return seconds;
}

// ---- the pairs ------------------------------------------------------------------------------------------------

export async function startMeshauthTcpPair(pki: BenchPki, appPort: number): Promise<TunnelPair> {
  const server = await startTcpSide({
    role: 'server',
    files: pki.serverFiles,
    id: pki.server.id.toString(),
    caFile: pki.caFile,
    targetPort: appPort,
  });
  try {
    const client = await startTcpSide({
      role: 'client',
      files: pki.clientFiles,
      id: pki.client.id.toString(),
      caFile: pki.caFile,
      targetPort: server.port,
      peerId: pki.server.id.toString(),
    });
    return {
      port: client.port,
      outboundPid: client.child.pid,
      inboundPid: server.child.pid,
      version: `node ${process.version}`,
      stop: async () => {
        await Promise.all([client.child.stop(), server.child.stop()]);
      },
    };
  } catch (error) {
    await server.child.stop();
    throw error;
  }
}

/**
 * stunnel as ghostunnel-style L4 peers: TLS 1.3 only, client certificate required and verified against the bench
 * root on the server side, the server verified by root and name (localhost) on the client side; foreground, no pid
 * file; killed by PID.
 */
export async function startStunnelPair(dir: string, pki: BenchPki, appPort: number): Promise<TunnelPair> {
  const binary = findBinary('stunnel4') ?? findBinary('stunnel');
  if (binary === undefined) throw new Error('stunnel not on PATH (apt-get install stunnel4)');
  const inPort = await freePort();
  const outPort = await freePort();
  const common = `foreground = yes
pid =
debug = 3
sslVersionMin = TLSv1.3
`;
  const serverConf = `${common}[in]
accept = 127.0.0.1:${inPort}
connect = 127.0.0.1:${appPort}
cert = ${pki.serverFiles.chainFile}
key = ${pki.serverFiles.keyFile}
CAfile = ${pki.caFile}
verifyChain = yes
requireCert = yes
`;
  const clientConf = `${common}[out]
client = yes
accept = 127.0.0.1:${outPort}
connect = 127.0.0.1:${inPort}
cert = ${pki.clientFiles.chainFile}
key = ${pki.clientFiles.keyFile}
CAfile = ${pki.caFile}
verifyChain = yes
checkHost = localhost
sni = localhost
`;
  await writeFile(join(dir, 'stunnel-in.conf'), serverConf);
  await writeFile(join(dir, 'stunnel-out.conf'), clientConf);
  const inChild = spawnChild('stunnel-in', binary, [join(dir, 'stunnel-in.conf')], dir);
  const outChild = spawnChild('stunnel-out', binary, [join(dir, 'stunnel-out.conf')], dir);
  const stop = async (): Promise<void> => {
    await Promise.all([inChild.stop(), outChild.stop()]);
  };
  try {
    await waitForPort(inPort, inChild);
    await waitForPort(outPort, outChild);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    port: outPort,
    outboundPid: outChild.pid,
    inboundPid: inChild.pid,
    version: stunnelVersion(binary),
    stop,
  };
}

function stunnelVersion(binary: string): string {
  // `stunnel -version` prints to stderr and exits non-zero.
  const out = spawnSync(binary, ['-version'], { encoding: 'utf8' });
  return /stunnel (\d+\.\d+)/.exec(`${out.stdout ?? ''}${out.stderr ?? ''}`)?.[1] ?? 'unknown';
}
