// Test harness for the agent against a real CA (src/ca): a CA directory with a join token, a CA server on
// 127.0.0.1 that can be stopped and restarted on the same port, an Agent with its own metrics and captured logs.
// Every start registers its teardown with the caller's cleanup list right away.
import { copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, type AgentOptions, CredentialHolder } from '../../src/agent/index.js';
import {
  activateNextRoot,
  type CaServer,
  type CaServerOptions,
  caPaths,
  createJoinToken,
  initCa,
  publishNextRoot,
  retirePreviousRoot,
  startCaServer,
} from '../../src/ca/index.js';
import { TrustDomain } from '../../src/identity/index.js';
import { BACKDATE_MS, type TrustBundle } from '../../src/pki/index.js';
import { createLogger, Metrics, silentLogger } from '../../src/telemetry/index.js';
import { waitFor } from '../helpers/wait.js';

export const TRUST_DOMAIN = TrustDomain.parse('example.org');
export const WORKLOAD_ID = 'spiffe://example.org/ns/shop/sa/orders';

export type Cleanup = () => Promise<void> | void;

export interface LogLine {
  readonly level: string;
  readonly msg: string;
  readonly [key: string]: unknown;
}

/**
 * What a test may set on the CA server beyond its directory, address and SVID lifetime. An agent follows the CA's
 * `spiffe_refresh_hint` after its first bundle fetch: a test that counts on frequent refreshes gives the CA a
 * hint as short as the agent's `bundleRefreshMs`. `now` is the CA's clock (one that jumps, or runs ahead); `kubernetes` lets it take service-account tokens.
 */
export type CaHarnessServerOptions = Pick<CaServerOptions, 'bundleRefreshHintMs' | 'now' | 'kubernetes'>;

export class CaHarness {
  readonly dir: string;
  readonly svidTtlMs: number;
  #server: CaServer | undefined;
  #port = 0;

  readonly #serverOptions: CaHarnessServerOptions;

  private constructor(dir: string, svidTtlMs: number, serverOptions: CaHarnessServerOptions) {
    this.dir = dir;
    this.svidTtlMs = svidTtlMs;
    this.#serverOptions = serverOptions;
  }

  static async start(
    svidTtlMs: number,
    cleanups: Cleanup[],
    serverOptions: CaHarnessServerOptions = {},
  ): Promise<CaHarness> {
    const dir = mkdtempSync(join(tmpdir(), 'meshauth-agent-ca-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    await initCa({ dir, trustDomain: TRUST_DOMAIN });
    const harness = new CaHarness(dir, svidTtlMs, serverOptions);
    cleanups.push(() => harness.stop());
    await harness.restart();
    return harness;
  }

  get url(): string {
    return `https://127.0.0.1:${this.#port}`;
  }

  get bundleFile(): string {
    return join(this.dir, 'bundle.pem');
  }

  /** Listens again on the port it had (the first start picks a free one). */
  async restart(): Promise<void> {
    if (this.#server !== undefined) return;
    // The agents know the CA by its port. While it was down, another process of the machine may have taken that port
    // for a moment (a connection's local port is drawn from the same range): wait for it to be free again, bounded.
    for (let attempt = 1; ; attempt++) {
      try {
        this.#server = await startCaServer({
          dir: this.dir,
          listen: `127.0.0.1:${this.#port}`,
          svidTtlMs: this.svidTtlMs,
          logger: silentLogger(),
          metrics: new Metrics(),
          ...this.#serverOptions,
        });
        break;
      } catch (error) {
        const code = (error as { cause?: { code?: string } }).cause?.code;
        if (code !== 'EADDRINUSE' || attempt === 50) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    this.#port = this.#server.port;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    await server?.close();
  }

  token(id = WORKLOAD_ID): Promise<string> {
    return createJoinToken({ dir: this.dir, id, ttlMs: 10 * 60_000 });
  }
}

export interface AgentHarness {
  readonly agent: Agent;
  readonly holder: CredentialHolder;
  readonly metrics: Metrics;
  readonly logs: LogLine[];
  readonly tokenFile: string;
  readonly bundleFile: string;
}

/** An Agent against `ca`, with the bundle copied and `token` written to files in a fresh directory. */
export function startAgent(
  ca: { readonly url: string; readonly bundleFile: string },
  token: string,
  cleanups: Cleanup[],
  overrides: Partial<AgentOptions> & { readonly bundlePem?: string } = {},
): AgentHarness {
  const dir = mkdtempSync(join(tmpdir(), 'meshauth-agent-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'token');
  const bundleFile = join(dir, 'bundle.pem');
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  if (overrides.bundlePem === undefined) copyFileSync(ca.bundleFile, bundleFile);
  else writeFileSync(bundleFile, overrides.bundlePem);
  const logs: LogLine[] = [];
  const logger = createLogger({
    level: 'debug',
    destination: { write: (line: string) => logs.push(JSON.parse(line)) },
  });
  const holder = new CredentialHolder();
  const metrics = new Metrics();
  const agent = new Agent({
    trustDomain: TRUST_DOMAIN,
    caUrl: ca.url,
    bundleFile,
    tokenFile,
    holder,
    logger,
    metrics,
    maxBackoffMs: 1_000,
    minBackoffMs: 200,
    ...withoutBundlePem(overrides),
  });
  cleanups.push(() => agent.close());
  agent.start();
  return { agent, holder, metrics, logs, tokenFile, bundleFile };
}

/** `meshauth_svid_rotations_total{result}` as a number. */
export async function rotations(metrics: Metrics, result: 'success' | 'failure'): Promise<number> {
  const { values } = await metrics.svidRotations.get();
  return values.find((v) => v.labels.result === result)?.value ?? 0;
}

export async function runCleanups(cleanups: Cleanup[]): Promise<void> {
  while (cleanups.length > 0) await cleanups.pop()?.();
}

function withoutBundlePem<T extends { readonly bundlePem?: string }>(options: T): Omit<T, 'bundlePem'> {
  const { bundlePem: _ignored, ...rest } = options;
  return rest;
}

/**
 * Copies `ca`'s directory (the old root's key, as an attacker who has it would), then takes the CA through a whole
 * root rotation under the running agent: publish (the agent holds both roots), activate (the agent renews under the
 * new root), retire with force. Returns the copy and the old root; the caller waits for what it checks next.
 */
export async function retireRootAfterSnapshot(
  ca: CaHarness,
  agent: AgentHarness,
  cleanups: Cleanup[],
): Promise<{ snapshot: string; oldRoot: TrustBundle['roots'][number] | undefined }> {
  const { holder } = agent;
  const snapshot = mkdtempSync(join(tmpdir(), 'meshauth-old-ca-'));
  cleanups.push(() => rmSync(snapshot, { recursive: true, force: true }));
  cpSync(ca.dir, snapshot, { recursive: true });
  // The new root's NotBefore in the same second as the old one's (a rotation within a second, as a fast test makes
  // it): which of the two is older must not depend on the clock's resolution.
  const oldRoot = holder.current?.bundle.roots[0];
  await publishNextRoot(ca.dir, new Date((oldRoot?.notBefore.getTime() ?? 0) + BACKDATE_MS));
  await waitFor('the agent to hold both roots', () => holder.current?.bundle.roots.length === 2, 10_000);
  await activateNextRoot(ca.dir);
  // A renewal logged right after the activation may still come from the old intermediate (the CA reads its files
  // once a second): wait for an SVID issued under the new one.
  const newIntermediate = pemBody(readFileSync(caPaths(ca.dir).intermediateCert, 'utf8'));
  await waitFor(
    'a renewal under the new root',
    () => pemBody(holder.current?.svid.certChainPem ?? '').includes(newIntermediate),
    10_000,
  );
  await retirePreviousRoot(ca.dir, new Date(), true);
  return { snapshot, oldRoot };
}

/** A PEM's base64 without its armour and line breaks: one certificate found inside a chain however it is wrapped. */
function pemBody(pem: string): string {
  return pem.replace(/-----[A-Z ]+-----|\s/g, '');
}
