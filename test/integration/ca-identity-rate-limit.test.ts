// A CSR flood from one identity (security.md A14), on a real CA on 127.0.0.1 with real mTLS renewals: one SVID
// renewing far faster than any agent gets 429 MESHAUTH_ERR_CA_RATE_LIMITED with Retry-After once its identity's
// burst is spent, counted in meshauth_ca_requests_rejected_total{reason="identity_rate_limited"} with one warn line
// (the rest suppressed); another identity renews at once meanwhile. The CA's clock is frozen, so exactly the burst
// is signed, and moved one second on to show the sustained rate.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestSvid } from '../../src/agent/ca-client.js';
import {
  type CaServer,
  caPaths,
  createJoinToken,
  IDENTITY_BURST,
  IDENTITY_RATE_PER_SECOND,
  initCa,
  startCaServer,
} from '../../src/ca/index.js';
import { TrustDomain } from '../../src/identity/index.js';
import { createCsrPem, exportPrivateKeyPem, generateKeyPair } from '../../src/pki/index.js';
import { Metrics } from '../../src/telemetry/index.js';
import { caRejections } from '../helpers/ca-metrics.js';
import { type LogLines, logLines } from '../helpers/log-lines.js';

const TD = 'example.org';
const FLOODER = `spiffe://${TD}/ns/shop/sa/flooder`;
const OTHER = `spiffe://${TD}/ns/shop/sa/other`;

describe('CSR flood from one identity (A14)', () => {
  let root: string;
  let dir: string;
  let server: CaServer;
  let metrics: Metrics;
  let logs: LogLines;
  let bundlePem: string;
  let clock = Date.now();
  const svids = new Map<string, { certPem: string; keyPem: string; agent: Agent }>();

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'meshauth-ca-flood-'));
    dir = join(root, 'certs');
    await initCa({ dir, trustDomain: TD });
    metrics = new Metrics();
    logs = logLines('ca', 'info');
    server = await startCaServer({
      dir,
      listen: '127.0.0.1:0',
      svidTtlMs: 3_600_000,
      logger: logs.logger,
      metrics,
      workers: 0,
      now: () => new Date(clock),
    });
    bundlePem = readFileSync(caPaths(dir).bundle, 'utf8');
    for (const id of [FLOODER, OTHER]) {
      const keys = await generateKeyPair('p256');
      const token = await createJoinToken({ dir, id, ttlMs: 60_000 });
      const keyPem = await exportPrivateKeyPem(keys.privateKey);
      const issued = await requestSvid(
        { caUrl: server.url, trustDomain: TrustDomain.parse(TD), bundlePem },
        { csrPem: await createCsrPem(keys), token },
      );
      const certPem = issued.certChainPem.join('');
      svids.set(id, {
        certPem,
        keyPem,
        agent: new Agent({
          connect: { cert: certPem, key: keyPem, ca: bundlePem, rejectUnauthorized: false },
        }),
      });
    }
  });
  afterAll(async () => {
    await server?.close();
    for (const { agent } of svids.values()) await agent.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  /** One renewal over mTLS with `id`'s SVID: the status, the code and Retry-After. */
  async function renew(id: string): Promise<{ status: number; code?: string; retryAfter?: string }> {
    const svid = svids.get(id);
    if (svid === undefined) throw new Error(`no SVID for ${id}`);
    const response = await request(`${server.url}/v1/svid`, {
      method: 'POST',
      dispatcher: svid.agent,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ csr: await csrPem }),
    });
    const json = (await response.body.json()) as { code?: string };
    const retryAfter = response.headers['retry-after'];
    return {
      status: response.statusCode,
      ...(json.code === undefined ? {} : { code: json.code }),
      ...(typeof retryAfter === 'string' ? { retryAfter } : {}),
    };
  }

  it('fail/one SVID renewing in a loop → 429 MESHAUTH_ERR_CA_RATE_LIMITED + Retry-After past its burst, counted, one log line; another identity is signed meanwhile', async () => {
    const before = await caRejections(metrics, 'identity_rate_limited');
    const flood = IDENTITY_BURST + 100;
    let next = 0;
    const answers: Array<{ status: number; code?: string; retryAfter?: string }> = [];
    const other: number[] = [];
    await Promise.all([
      ...Array.from({ length: 16 }, async () => {
        while (next < flood) {
          next += 1;
          answers.push(await renew(FLOODER));
        }
      }),
      (async () => {
        // The other identity renews while the flood is on.
        for (let i = 0; i < 5; i++) other.push((await renew(OTHER)).status);
      })(),
    ]);
    expect(other).toEqual([200, 200, 200, 200, 200]);
    const ok = answers.filter((a) => a.status === 200);
    const limited = answers.filter((a) => a.status === 429);
    expect(ok).toHaveLength(IDENTITY_BURST); // the clock stands still: the burst, nothing more
    expect(limited).toHaveLength(100);
    for (const answer of limited) {
      expect(answer.code).toBe('MESHAUTH_ERR_CA_RATE_LIMITED');
      expect(Number(answer.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(Number(answer.retryAfter)).toBeLessThanOrEqual(30);
    }
    expect(await caRejections(metrics, 'identity_rate_limited')).toBe(before + 100);
    const lines = logs.find({ event: 'ca_identity_rate_limited' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'warn', id: FLOODER });
    // The global queue never shed: this was the per-identity limit.
    expect(await caRejections(metrics, 'overloaded')).toBe(0);
  });

  it('ok/one second later the identity is signed again at the sustained rate', async () => {
    clock += 1_000;
    const answers: number[] = [];
    for (let i = 0; i < IDENTITY_RATE_PER_SECOND + 5; i++) answers.push((await renew(FLOODER)).status);
    expect(answers.filter((s) => s === 200)).toHaveLength(IDENTITY_RATE_PER_SECOND);
    expect(answers.filter((s) => s === 429)).toHaveLength(5);
  });
});

const csrPem = generateKeyPair('p256').then((keys) => createCsrPem(keys));
