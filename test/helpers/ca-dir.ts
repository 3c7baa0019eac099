// A throw-away CA directory for CA tests: `initCa` in a temp dir, removed by the returned cleanup; a CA server on
// 127.0.0.1 port 0 serving from one (also on a clock the test sets, with an anonymous client, or with a client that
// posts CSRs under fresh join tokens); and, for e2e tests of the built CLI, one made by `meshauth ca init` per test.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, expect, type TestContext } from 'vitest';
import {
  type CaServer,
  type CaServerOptions,
  createJoinToken,
  initCa,
  loadCaMaterial,
  startCaServer,
} from '../../src/ca/index.js';
import { type Logger, Metrics } from '../../src/telemetry/index.js';
import { type LogLines, logLines } from './log-lines.js';
import { assertBuilt, meshauth } from './meshauth-cli.js';

export async function makeCaDir(trustDomain = 'example.org'): Promise<{ dir: string; cleanup: () => void }> {
  const root = mkdtempSync(join(tmpdir(), 'meshauth-ca-'));
  const dir = join(root, 'certs');
  await initCa({ dir, trustDomain });
  return { dir, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

export interface TestCaServer {
  /** The CA directory the server serves from (the `--dir` of CLI commands run against it). */
  readonly dir: string;
  readonly server: CaServer;
  /** The CA's trust bundle, PEM, for clients of the server. */
  readonly bundlePem: string;
  /** Closes the server, then removes the directory. */
  close(): Promise<void>;
}

/** A CA server on 127.0.0.1 port 0 over a fresh CA directory (makeCaDir) of example.org. */
export async function startCaInTempDir(options: Omit<CaServerOptions, 'dir' | 'listen'>): Promise<TestCaServer> {
  const ca = await makeCaDir();
  try {
    const server = await startCaServer({ ...options, dir: ca.dir, listen: '127.0.0.1:0' });
    return {
      dir: ca.dir,
      server,
      bundlePem: (await loadCaMaterial(ca.dir)).bundle.toPem(),
      close: async () => {
        await server.close();
        ca.cleanup();
      },
    };
  } catch (error) {
    ca.cleanup();
    throw error;
  }
}

export interface ClockedCaServer extends TestCaServer {
  /** A client without a certificate that trusts the CA (for /v1/jwks); close() closes it first. */
  readonly anonymous: Agent;
}

/** startCaInTempDir with SVIDs of 30 minutes, logging to `logger`, on the clock `now`, and an anonymous client. */
export async function startClockedCa(logger: Logger, now: () => Date): Promise<ClockedCaServer> {
  const ca = await startCaInTempDir({ svidTtlMs: 30 * 60_000, logger, metrics: new Metrics(), now });
  const anonymous = new Agent({ connect: { ca: ca.bundlePem } });
  return {
    ...ca,
    anonymous,
    close: async () => {
      await anonymous.close();
      await ca.close();
    },
  };
}

/** What a file of CSR tests holds (csrCaPerFile): the CA's metrics, its log lines, and a client to ask for SVIDs. */
export interface CsrCa {
  readonly metrics: Metrics;
  /** The CA's log lines (logLines' defaults). */
  readonly log: LogLines;
  /** POST /v1/svid with `csr` and a fresh join token, over TLS that trusts the CA: the status and the JSON body. */
  post(csr: string): Promise<{ status: number; body: { code?: string } }>;
}

/**
 * For a file of CSR tests: registers the hooks that start startCaInTempDir (SVIDs of 10 minutes, logging to `log`,
 * counting in `metrics`) before its tests and close it after them; `post` asks for SVIDs of `id`.
 */
export function csrCaPerFile(id: string): CsrCa {
  const metrics = new Metrics();
  const log = logLines();
  let ca: TestCaServer | undefined;
  let agent: Agent | undefined;
  beforeAll(async () => {
    ca = await startCaInTempDir({ svidTtlMs: 600_000, logger: log.logger, metrics });
    agent = new Agent({ connect: { ca: ca.bundlePem } });
  });
  afterAll(async () => {
    await agent?.close();
    await ca?.close();
  });
  return {
    metrics,
    log,
    post: async (csr) => {
      if (ca === undefined || agent === undefined) throw new Error('the CA is not started');
      const token = await createJoinToken({ dir: ca.dir, id, ttlMs: 60_000 });
      const response = await request(`${ca.server.url}/v1/svid`, {
        method: 'POST',
        dispatcher: agent,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ csr, token }),
      });
      return { status: response.statusCode, body: (await response.body.json()) as { code?: string } };
    },
  };
}

export interface CliCaDir {
  /** A fresh temporary directory per test, the commands' working directory. */
  readonly cwd: string;
  /** `cwd/ca`, made by `meshauth ca init --trust-domain example.org` before each test. */
  readonly dir: string;
  /** Run after each test, last added first (child processes to end). */
  readonly cleanups: (() => Promise<void> | void)[];
}

/** `meshauth ca init --trust-domain example.org` of `cwd/ca`. */
async function initCliCaDir(cwd: string): Promise<void> {
  const init = await meshauth(['ca', 'init', '--trust-domain', 'example.org', '--dir', join(cwd, 'ca')], { cwd });
  expect(init.code, init.stderr).toBe(0);
}

/** Runs `cleanups` last added first, then removes `cwd`. */
async function cleanUpCliCaDir(cwd: string, cleanups: (() => Promise<void> | void)[]): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  rmSync(cwd, { recursive: true, force: true });
}

/**
 * For e2e tests of the built CLI on a CA directory: registers the hooks that check the build, init a CA in a fresh
 * directory before each test, and run the cleanups and remove the directory after it.
 */
export function cliCaDirPerTest(prefix: string): CliCaDir {
  let cwd = '';
  const cleanups: (() => Promise<void> | void)[] = [];
  beforeAll(() => assertBuilt());
  beforeEach(async () => {
    cwd = mkdtempSync(join(tmpdir(), prefix));
    await initCliCaDir(cwd);
  });
  afterEach(() => cleanUpCliCaDir(cwd, cleanups));
  return {
    get cwd() {
      return cwd;
    },
    get dir() {
      return join(cwd, 'ca');
    },
    cleanups,
  };
}

/**
 * cliCaDirPerTest's directory for one test that runs beside others (`it.concurrent`): made when called, its cleanups
 * run and the directory removed when that test finishes. The caller checks the build once (assertBuilt).
 */
export async function cliCaDirForTest(
  prefix: string,
  onTestFinished: TestContext['onTestFinished'],
): Promise<CliCaDir> {
  const cwd = mkdtempSync(join(tmpdir(), prefix));
  const cleanups: (() => Promise<void> | void)[] = [];
  onTestFinished(() => cleanUpCliCaDir(cwd, cleanups));
  await initCliCaDir(cwd);
  return { cwd, dir: join(cwd, 'ca'), cleanups };
}
