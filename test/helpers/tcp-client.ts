// Raw TCP client ends for tunnel tests: connect, collect what arrives, and wait for end / close / reset as
import { spawn, spawnSync } from 'node:child_process';
// conditions (never fixed sleeps).
import { connect, type Socket } from 'node:net';

export { until } from './wait.js';

export interface RawClient {
  readonly socket: Socket;
  /** Everything received so far. */
  received(): Buffer;
  /** Resolves on 'end' (a FIN arrived). */
  readonly ended: Promise<void>;
  /** Resolves on 'close' with the error that closed it, if any (ECONNRESET for a reset). */
  readonly closed: Promise<(Error & { code?: string }) | undefined>;
}

export async function rawClient(
  port: number,
  options: { allowHalfOpen?: boolean; localAddress?: string } = {},
): Promise<RawClient> {
  const socket = connect({
    host: '127.0.0.1',
    port,
    allowHalfOpen: options.allowHalfOpen ?? false,
    ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
  });
  const chunks: Buffer[] = [];
  let error: (Error & { code?: string }) | undefined;
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', (e: Error) => {
    error = e;
  });
  const ended = new Promise<void>((resolve) => socket.once('end', resolve));
  const closed = new Promise<(Error & { code?: string }) | undefined>((resolve) =>
    socket.once('close', () => resolve(error)),
  );
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, received: () => Buffer.concat(chunks), ended, closed };
}

/** Reads a socket's data until `bytes` have arrived. */
export function readBytes(socket: Socket, bytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      total += chunk.length;
      if (total >= bytes) {
        socket.off('data', onData);
        resolve(Buffer.concat(chunks));
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

/** True when `tool` is on PATH. */
export function available(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

/** Runs a command asynchronously (in-process servers keep serving) with stdin `input`; killed after `timeoutMs`. */
export function run(
  command: string,
  args: readonly string[],
  options: { input?: string | Buffer; timeoutMs?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 15_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    // A command that exits before reading its input (redis-cli on a refused connection) closes the pipe: EPIPE on
    // stdin is then no error of the test, and unhandled it would be an uncaught exception. Its exit code tells.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/** How a server ended a plain-TCP exchange: the bytes it sent and whether it closed first (not our 5 s timeout). */
export interface RawReply {
  readonly bytes: Buffer;
  readonly closedByServer: boolean;
}

/**
 * Writes `payload` on a new plain TCP connection to 127.0.0.1:`port` and resolves with the reply.
 * `firstBytesOnly`: close as soon as the server sent something (a handshake that goes on is not followed).
 * `idleMs`: how long the connection may stay silent before the client gives up (a server timeout under test).
 */
export function rawTcpExchange(
  port: number,
  payload: Buffer,
  firstBytesOnly = false,
  idleMs = 5_000,
): Promise<RawReply> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let timedOut = false;
    const socket = connect(port, '127.0.0.1', () => socket.write(payload));
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      if (firstBytesOnly) socket.destroy();
    });
    socket.on('error', () => undefined); // a reset is a close too
    socket.setTimeout(idleMs, () => {
      timedOut = true;
      socket.destroy();
    });
    socket.on('close', () => resolve({ bytes: Buffer.concat(chunks), closedByServer: !timedOut }));
  });
}

/** rawTcpExchange of HTTP/1.1 written by hand: `text` sent, the reply read back, both as latin1. */
export async function rawHttpExchange(port: number, text: string): Promise<string> {
  return (await rawTcpExchange(port, Buffer.from(text, 'latin1'))).bytes.toString('latin1');
}
