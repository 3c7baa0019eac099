// A CSR flood from one identity, on a real CA on 127.0.0.1 with real mTLS renewals: one SVID renewing far faster than
// any agent gets 429 MESHAUTH_ERR_CA_RATE_LIMITED with Retry-After once its identity's burst is spent, counted in
// meshauth_ca_requests_rejected_total{reason="identity_rate_limited"} with one warn line (the rest suppressed); another
// identity renews at once meanwhile. The CA's clock is frozen, so exactly the burst is signed, and moved one second on
// to show the sustained rate. The same for JWT-SVIDs (POST /v1/token, over the same mTLS): an RFC 6749 §5.2 body with
// Retry-After, from buckets of their own, so a JWT-SVID flood leaves the identity's X509-SVID renewals alone.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestSvid } from '../../src/agent/ca-client.js';
import {
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
import { logLines } from '../helpers/log-lines.js';

const TD = 'example.org';
const FLOODER = `spiffe://${TD}/ns/shop/sa/flooder`;
const OTHER = `spiffe://${TD}/ns/shop/sa/other`;

/** A CA on 127.0.0.1 with a frozen clock, and an SVID (with an mTLS agent) for FLOODER and OTHER. */
async function startFloodCa(prefix: string) {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const dir = join(root, 'certs');
  await initCa({ dir, trustDomain: TD });
  const metrics = new Metrics();
  const logs = logLines('ca', 'info');
  const clock = { ms: Date.now() };
  const server = await startCaServer({
    dir,
    listen: '127.0.0.1:0',
    svidTtlMs: 3_600_000,
    logger: logs.logger,
    metrics,
    workers: 0,
    now: () => new Date(clock.ms),
  });
  const agents = new Map<string, Agent>();
  const close = async () => {
    await server.close();
    for (const agent of agents.values()) await agent.close();
    rmSync(root, { recursive: true, force: true });
  };
  try {
    const bundlePem = readFileSync(caPaths(dir).bundle, 'utf8');
    for (const id of [FLOODER, OTHER]) {
      const keys = await generateKeyPair('p256');
      const token = await createJoinToken({ dir, id, ttlMs: 60_000 });
      const keyPem = await exportPrivateKeyPem(keys.privateKey);
      const issued = await requestSvid(
        { caUrl: server.url, trustDomain: TrustDomain.parse(TD), bundlePem },
        { csrPem: await createCsrPem(keys), token },
      );
      const certPem = issued.certChainPem.join('');
      agents.set(id, new Agent({ connect: { cert: certPem, key: keyPem, ca: bundlePem, rejectUnauthorized: false } }));
    }
  } catch (error) {
    await close();
    throw error;
  }
  /** One POST over mTLS with `id`'s SVID: the status, the JSON body and Retry-After. */
  const post = async (id: string, path: string, contentType: string, body: string): Promise<Answer> => {
    const agent = agents.get(id);
    if (agent === undefined) throw new Error(`no SVID for ${id}`);
    const response = await request(`${server.url}${path}`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': contentType },
      body,
    });
    const json = (await response.body.json()) as Record<string, unknown>;
    const retryAfter = response.headers['retry-after'];
    return { status: response.statusCode, json, ...(typeof retryAfter === 'string' ? { retryAfter } : {}) };
  };
  return { server, metrics, logs, clock, post, close };
}

interface Answer {
  status: number;
  json: Record<string, unknown>;
  retryAfter?: string;
}

/** `count` calls of `call` from 16 concurrent loops (bounded: each call claims one of `count`). */
async function flood(count: number, call: () => Promise<Answer>): Promise<Answer[]> {
  let next = 0;
  const answers: Answer[] = [];
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < count) {
        next += 1;
        answers.push(await call());
      }
    }),
  );
  return answers;
}

function expectLimited(answers: Answer[]): void {
  for (const answer of answers) {
    expect(Number(answer.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(answer.retryAfter)).toBeLessThanOrEqual(30);
  }
}

describe('CSR flood from one identity (A14)', () => {
  let ca: Awaited<ReturnType<typeof startFloodCa>>;

  beforeAll(async () => {
    ca = await startFloodCa('meshauth-ca-flood-');
  });
  afterAll(async () => {
    await ca?.close();
  });

  const renew = async (id: string) =>
    ca.post(id, '/v1/svid', 'application/json', JSON.stringify({ csr: await csrPem }));

  it('fail/one SVID renewing in a loop → 429 MESHAUTH_ERR_CA_RATE_LIMITED + Retry-After past its burst, counted, one log line; another identity is signed meanwhile', async () => {
    const before = await caRejections(ca.metrics, 'identity_rate_limited');
    const other: number[] = [];
    const startedAt = Date.now();
    const [answers] = await Promise.all([
      flood(IDENTITY_BURST + 100, () => renew(FLOODER)),
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
    for (const answer of limited) expect(answer.json.code).toBe('MESHAUTH_ERR_CA_RATE_LIMITED');
    expectLimited(limited);
    expect(await caRejections(ca.metrics, 'identity_rate_limited')).toBe(before + 100);
    const lines = ca.logs.find({ event: 'ca_identity_rate_limited' });
    expect(lines.length).toBeLessThanOrEqual(logLinesFor(Date.now() - startedAt));
    expect(lines[0]).toMatchObject({ level: 'warn', id: FLOODER });
    // The global queue never shed: this was the per-identity limit.
    expect(await caRejections(ca.metrics, 'overloaded')).toBe(0);
  });

  it('ok/one second later the identity is signed again at the sustained rate', async () => {
    ca.clock.ms += 1_000;
    const answers: number[] = [];
    for (let i = 0; i < IDENTITY_RATE_PER_SECOND + 5; i++) answers.push((await renew(FLOODER)).status);
    expect(answers.filter((s) => s === 200)).toHaveLength(IDENTITY_RATE_PER_SECOND);
    expect(answers.filter((s) => s === 429)).toHaveLength(5);
  });
});

/**
 * The refusal log lines a flood may write: one per 10 s window, plus the window's summary line. One when the flood
 * fits in a window; a loaded machine (CI beside other jobs) can stretch it over more.
 */
function logLinesFor(elapsedMs: number): number {
  return 2 * Math.ceil(elapsedMs / 10_000) - 1;
}

describe('JWT-SVID flood from one identity (A14, POST /v1/token)', () => {
  let ca: Awaited<ReturnType<typeof startFloodCa>>;

  beforeAll(async () => {
    ca = await startFloodCa('meshauth-ca-jwt-flood-');
  });
  afterAll(async () => {
    await ca?.close();
  });

  const token = (id: string) =>
    ca.post(id, '/v1/token', 'application/x-www-form-urlencoded', 'grant_type=client_credentials&audience=api');

  it('fail/one SVID asking for JWT-SVIDs in a loop → 429 temporarily_unavailable (MESHAUTH_ERR_CA_RATE_LIMITED) + Retry-After past its burst, counted, one log line; another identity gets its tokens meanwhile', async () => {
    const before = await caRejections(ca.metrics, 'identity_rate_limited');
    const other: number[] = [];
    const startedAt = Date.now();
    const [answers] = await Promise.all([
      flood(IDENTITY_BURST + 100, () => token(FLOODER)),
      (async () => {
        for (let i = 0; i < 5; i++) other.push((await token(OTHER)).status);
      })(),
    ]);
    expect(other).toEqual([200, 200, 200, 200, 200]);
    const ok = answers.filter((a) => a.status === 200);
    const limited = answers.filter((a) => a.status === 429);
    expect(ok).toHaveLength(IDENTITY_BURST);
    expect(limited).toHaveLength(100);
    for (const answer of limited) {
      // RFC 6749 §5.2 form, as every other refusal of this endpoint, with our code beside it.
      expect(answer.json).toEqual({
        error: 'temporarily_unavailable',
        error_description: 'too many token requests for this client; retry after the Retry-After delay',
        code: 'MESHAUTH_ERR_CA_RATE_LIMITED',
      });
    }
    expectLimited(limited);
    expect(await caRejections(ca.metrics, 'identity_rate_limited')).toBe(before + 100);
    const lines = ca.logs.find({ event: 'ca_jwt_identity_rate_limited' });
    expect(lines.length).toBeLessThanOrEqual(logLinesFor(Date.now() - startedAt));
    expect(lines[0]).toMatchObject({ level: 'warn', id: FLOODER, method: 'jwt' });
    expect(ca.logs.find({ event: 'ca_request_rejected', code: 'MESHAUTH_ERR_CA_RATE_LIMITED' })).toHaveLength(0);
    expect(await caRejections(ca.metrics, 'overloaded')).toBe(0);
  });

  it('ok/the X509-SVID budget is its own: the identity whose JWT-SVIDs are refused renews its SVID', async () => {
    expect((await token(FLOODER)).status).toBe(429); // still refused: the clock has not moved
    const renewed = await ca.post(FLOODER, '/v1/svid', 'application/json', JSON.stringify({ csr: await csrPem }));
    expect(renewed.status).toBe(200);
  });

  it('ok/one second later the identity gets JWT-SVIDs again at the sustained rate', async () => {
    ca.clock.ms += 1_000;
    const answers: number[] = [];
    for (let i = 0; i < IDENTITY_RATE_PER_SECOND + 5; i++) answers.push((await token(FLOODER)).status);
    expect(answers.filter((s) => s === 200)).toHaveLength(IDENTITY_RATE_PER_SECOND);
    expect(answers.filter((s) => s === 429)).toHaveLength(5);
  });
});

const csrPem = generateKeyPair('p256').then((keys) => createCsrPem(keys));
