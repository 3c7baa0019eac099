// Builders for fault-injection tests: a sidecar pair whose JSON log lines are captured (and checked to be strict
// JSON with unique keys), raw TCP "apps" that misbehave on purpose, and small polling helpers. Everything on
// 127.0.0.1, port 0; every start returns its own close.
import { createServer as createNetServer, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import type { SidecarDependencies } from '../../src/sidecar/index.js';
import { createLogger, type Logger } from '../../src/telemetry/index.js';
import {
  type AppHandler,
  startApp,
  startTestSidecar,
  type TestApp,
  type TestSidecar,
  testConfig,
} from './sidecar-harness.js';
import { parseStrictJson } from './strict-json.js';
import type { TestCa } from './test-ca.js';
import { waitFor as poll } from './wait.js';

export interface CapturedLog {
  readonly logger: Logger;
  /** Every line so far, parsed strictly (a repeated key throws). */
  records(): Record<string, unknown>[];
}

export function captureLogger(name: string): CapturedLog {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(
        ...chunk
          .toString()
          .split('\n')
          .filter((l) => l !== ''),
      );
      done();
    },
  });
  const logger = createLogger({ name, level: 'debug', destination });
  return { logger, records: () => lines.map((l) => parseStrictJson(l) as Record<string, unknown>) };
}

export interface FaultPair {
  readonly a: TestSidecar;
  readonly b: TestSidecar;
  readonly logA: CapturedLog;
  readonly logB: CapturedLog;
  readonly idA: string;
  readonly idB: string;
  close(): Promise<void>;
}

/** app (any port) ← B ← A, route host `b.mesh`; both sidecars log into captured loggers. */
export async function startFaultPair(
  ca: TestCa,
  appPort: number,
  options: { appTimeout?: string; hooksB?: SidecarDependencies['hooks'] } = {},
): Promise<FaultPair> {
  const idA = ca.idFor('/ns/faults/sa/a');
  const idB = ca.idFor('/ns/faults/sa/b');
  const logA = captureLogger('sidecar');
  const logB = captureLogger('sidecar');
  const b = await startTestSidecar(
    ca,
    idB,
    testConfig({ appPort, ...(options.appTimeout === undefined ? {} : { appTimeout: options.appTimeout }) }),
    { logger: logB.logger, ...(options.hooksB === undefined ? {} : { hooks: options.hooksB }) },
  );
  const a = await startTestSidecar(
    ca,
    idA,
    testConfig({ appPort: 1, routes: { 'b.mesh': { address: `127.0.0.1:${b.sidecar.inboundPort}`, ids: [idB] } } }),
    { logger: logA.logger },
  );
  return {
    a,
    b,
    logA,
    logB,
    idA,
    idB,
    close: async () => {
      await a.sidecar.close(0);
      await b.sidecar.close(0);
    },
  };
}

export interface RawApp {
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  close(): Promise<void>;
}

/** A TCP server that hands each connection to `onConnection` (for answers no HTTP server would send). */
export async function startRawApp(onConnection: (socket: Socket, index: number) => void): Promise<RawApp> {
  let accepted = 0;
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    onConnection(socket, accepted++);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    get accepted() {
      return accepted;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Reads one HTTP/1 request head from a raw socket, then calls `then` (once). */
export function onRequestHead(socket: Socket, then: (head: string) => void): void {
  let buffered = '';
  let done = false;
  socket.on('data', (chunk: Buffer) => {
    if (done) return;
    buffered += chunk.toString('latin1');
    const end = buffered.indexOf('\r\n\r\n');
    if (end !== -1) {
      done = true;
      then(buffered.slice(0, end));
    }
  });
}

/**
 * waitFor (wait.ts) for probes that may throw while what they ask is still starting, and whose answer may be 0 or
 * an empty string: any value but undefined or false ends the wait.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 10_000,
): Promise<T> {
  const found = await poll(
    what,
    async () => {
      const value = await Promise.resolve()
        .then(probe)
        .catch(() => undefined);
      return value === undefined || value === false ? undefined : { value };
    },
    timeoutMs,
  );
  return found.value;
}

/** The value of one sample (`name{labels}`) in a registry's text output, 0 when absent. */
export async function metricValue(sidecar: TestSidecar, name: string, labels: string): Promise<number> {
  const text = await sidecar.metrics.registry.getSingleMetricAsString(name);
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) && line.includes(labels)) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

export { type AppHandler, startApp, type TestApp };
