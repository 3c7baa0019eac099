// The bench's closed-loop worker with wrk (bench/load.ts): it reports the responses that were 2xx and the ones that
// were not, with µs percentiles from wrk's own histogram. Runs the built worker (dist/bench/load.js) as the bench
// does, against the bench app and against an app that answers 503. Skipped where wrk is not installed.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningApp, startApp } from '../../bench/app.js';

const WORKER = fileURLToPath(new URL('../../dist/bench/load.js', import.meta.url));

function hasWrk(): boolean {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

interface WorkerResult {
  readonly requests: number;
  readonly seconds: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly non2xx: number;
}

async function closedLoop(port: number): Promise<WorkerResult> {
  const spec = {
    url: `http://127.0.0.1:${port}/`,
    host: 'app.bench',
    mode: 'closed',
    connections: 4,
    warmupSec: 0,
    durationSec: 1,
  };
  const child = spawn(process.execPath, [WORKER, '--worker', JSON.stringify(spec)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  expect(code).toBe(0);
  const lines = out.trim().split('\n');
  expect(JSON.parse(lines[0] ?? '')).toEqual({ phase: 'measure' });
  return JSON.parse(lines[1] ?? '') as WorkerResult;
}

describe.skipIf(!hasWrk())('bench closed loop with wrk', () => {
  let app: RunningApp;
  let failing: Server;
  let failingPort = 0;
  beforeAll(async () => {
    app = await startApp();
    failing = createServer((_req, res) => {
      res.writeHead(503, { 'content-length': 0 });
      res.end();
    });
    failing.listen(0, '127.0.0.1');
    await once(failing, 'listening');
    const address = failing.address();
    failingPort = typeof address === 'object' && address !== null ? address.port : 0;
  });
  afterAll(async () => {
    await app.close();
    failing.closeAllConnections();
    await new Promise((done) => failing.close(done));
  });

  it('ok/2xx responses counted with µs percentiles', async () => {
    const result = await closedLoop(app.port);
    expect(result.requests).toBeGreaterThan(50);
    expect(result.non2xx).toBe(0);
    expect(result.errors).toBe(0);
    expect(result.p50Ms).toBeGreaterThan(0);
    expect(result.p99Ms).toBeGreaterThanOrEqual(result.p50Ms);
    expect(result.seconds).toBeGreaterThan(0.5);
  });

  it('fail/every 503 is non-2xx, none counted as a request', async () => {
    const result = await closedLoop(failingPort);
    expect(result.requests).toBe(0);
    expect(result.non2xx).toBeGreaterThan(50);
  });
});
