// Fault injection: the end-user issuer's JWKS endpoint (real HTTPS on 127.0.0.1 under a private CA, trusted through
// the issuer's `caFile`) flaps — down, garbage, 500, a stall, an empty key set, an oversized answer — while a steady
// stream of tokens of the cached key is verified, and tokens of a key the issuer has just rotated in arrive. Tokens
// of the cached key never fail; each kind of failure is counted and logged once; the last good key set is kept
// until max-stale; once the endpoint is back with the rotated key set, the new key counts after one rate-limited
// unknown-kid refresh. The same flapping, with a plain-http endpoint on loopback, through a real sidecar pair
// (12 concurrent clients → sidecar A → sidecar B, which verifies the tokens).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialHolder } from '../../src/agent/index.js';
import { EndUserVerifier } from '../../src/authn/index.js';
import { type RunningSidecar, startSidecar } from '../../src/sidecar/index.js';
import { Metrics } from '../../src/telemetry/index.js';
import { endUserToken, type SigningKey, signingKey, tokenRejection } from '../helpers/end-user-keys.js';
import { captureLogger, waitFor } from '../helpers/fault-harness.js';
import { FlappingJwks, type JwksServerMode as Mode } from '../helpers/flapping-jwks.js';
import { startApp, startTestSidecar, testConfig } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';
import { makeWebhookCert } from '../helpers/webhook-tls.js';

const AUDIENCE = 'shop';
const COOLDOWN_MS = 30_000;
const MAX_STALE_MS = 10 * 60_000;
const FAILED = 'JWKS refresh failed; keeping the last good key set';

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

describe('the JWKS endpoint flaps while tokens are verified', () => {
  let jwks: FlappingJwks;
  let verifier: EndUserVerifier;
  const metrics = new Metrics();
  const log = captureLogger('sidecar');
  let offset = 0;
  let oldKey: SigningKey;
  let newKey: SigningKey;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshauth-faults-jwks-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const tls = makeWebhookCert(dir, 'idp');
    const caFile = join(dir, 'idp-ca.pem');
    writeFileSync(caFile, tls.caPem);
    [oldKey, newKey] = await Promise.all([signingKey('2026-11'), signingKey('2026-12')]);
    jwks = new FlappingJwks({ key: tls.keyPem, cert: tls.certPem });
    jwks.keys = [oldKey];
    await jwks.up();
    cleanups.push(() => jwks.down().catch(() => undefined));
    verifier = new EndUserVerifier({
      config: {
        required: true,
        issuers: [
          { issuer: jwks.url, audiences: [AUDIENCE], algorithms: ['ES256'], jwksUri: `${jwks.url}/jwks`, caFile },
        ],
        vouchers: [],
        claims: [],
      },
      // No background refresh: every fetch below is one the test causes (start-up, or an unknown kid after the
      // cooldown, which the test passes by moving the verifier's clock).
      tunables: {
        jwksRefreshIntervalMs: 0,
        unknownKidCooldownMs: COOLDOWN_MS,
        jwksMaxStaleMs: MAX_STALE_MS,
        jwksFetchTimeoutMs: 500,
      },
      metrics,
      logger: log.logger,
      now: () => Date.now() + offset,
    });
    cleanups.push(() => verifier.close());
  });

  const loads = async (result: string): Promise<number> => {
    const text = await metrics.registry.getSingleMetricAsString('meshauth_enduser_jwks_refreshes_total');
    const line = text.split('\n').find((l) => l.includes('source="url"') && l.includes(`result="${result}"`));
    return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
  };
  const failureLines = (failure: string) => log.records().filter((r) => r.msg === FAILED && r.failure === failure);

  it('ok/cached-key tokens never fail; each failure kind is counted and logged once; the rotated key counts once back', async () => {
    verifier.start();
    const cached = await endUserToken(oldKey, jwks.url, AUDIENCE, 'alice', 3600);
    const rotated = await endUserToken(newKey, jwks.url, AUDIENCE, 'bob', 3600);
    await waitFor('the first key set', async () => (await tokenRejection(verifier, cached)) === undefined || undefined);

    // Steady traffic: 8 concurrent callers verify tokens of the cached key for the whole flapping phase.
    let stop = false;
    const outcomes = { ok: 0, failed: [] as string[] };
    const callers = Array.from({ length: 8 }, async () => {
      while (!stop) {
        const reason = await tokenRejection(verifier, cached);
        if (reason === undefined) outcomes.ok++;
        else outcomes.failed.push(reason);
        // Paced: steady callers without pinning a core the tests running beside this one need.
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    });

    // Each fault: one token of the rotated key after the cooldown triggers one fetch, which fails with `failure`.
    const faults: [string, Mode | 'down' | 'unchanged', string][] = [
      ['down', 'down', 'network'],
      ['still down', 'unchanged', 'network'],
      ['garbage', 'garbage', 'invalid_json'],
      ['500', 'status_500', 'status'],
      ['stall', 'stall', 'timeout'],
      ['no usable key', 'empty', 'no_usable_key'],
      ['oversized', 'huge', 'too_large'],
    ];
    for (const [what, step, failure] of faults) {
      if (step === 'down') await jwks.down();
      else if (step !== 'unchanged') await jwks.serve(step);
      const before = await loads(failure);
      offset += COOLDOWN_MS + 1;
      expect(await tokenRejection(verifier, rotated), what).toBe('unknown_kid');
      expect(await loads(failure), what).toBe(before + 1);
      // Within the cooldown, a burst of unknown kids costs the issuer nothing more.
      const requests = jwks.requests;
      const burst = await Promise.all(Array.from({ length: 20 }, () => tokenRejection(verifier, rotated)));
      expect(new Set(burst), what).toEqual(new Set(['unknown_kid']));
      expect(jwks.requests, what).toBe(requests);
      expect(await tokenRejection(verifier, cached), what).toBeUndefined();
    }
    stop = true;
    await Promise.all(callers);
    expect(outcomes.failed).toEqual([]);
    expect(outcomes.ok).toBeGreaterThan(0);

    // One line per kind: the two consecutive `network` failures (one outage) logged once; each later kind once.
    expect(await loads('network')).toBe(2);
    for (const failure of ['network', 'invalid_json', 'status', 'timeout', 'no_usable_key', 'too_large']) {
      const lines = failureLines(failure);
      expect(lines, failure).toHaveLength(1);
      expect(lines[0], failure).toMatchObject({ level: 'warn', source: 'url', issuer: jwks.url, cachedKeys: 1 });
    }

    // Back with the rotated key set (new key first, old key still published): the next unknown kid after the
    // cooldown fetches it once; both tokens pass; recovery is logged at info.
    jwks.keys = [newKey, oldKey];
    await jwks.serve('ok');
    const okBefore = await loads('ok');
    expect(await tokenRejection(verifier, rotated)).toBe('unknown_kid'); // still inside the last cooldown
    offset += COOLDOWN_MS + 1;
    expect(await tokenRejection(verifier, rotated)).toBeUndefined();
    expect(await tokenRejection(verifier, cached)).toBeUndefined();
    expect(await loads('ok')).toBe(okBefore + 1);
    expect(log.records().some((r) => r.msg === 'JWKS loaded again' && r.level === 'info')).toBe(true);
  }, 60_000);

  it('fail/the last good key set is kept only until max-stale: then tokens fail closed (jwks_unavailable)', async () => {
    const cached = await endUserToken(oldKey, jwks.url, AUDIENCE, 'alice', 3600);
    expect(await tokenRejection(verifier, cached)).toBeUndefined();
    await jwks.down();
    offset += MAX_STALE_MS - 60_000;
    expect(await tokenRejection(verifier, cached)).toBeUndefined();
    offset += 120_000;
    expect(await tokenRejection(verifier, cached)).toBe('jwks_unavailable');
    // Back: the first token after the cooldown reloads the keys, with no restart.
    await jwks.serve('ok');
    offset += COOLDOWN_MS + 1;
    expect(await tokenRejection(verifier, cached)).toBeUndefined();
  });
});

describe('the JWKS endpoint flaps under mesh traffic through a sidecar pair', () => {
  const cleanupsHere: (() => Promise<void> | void)[] = [];
  afterAll(async () => {
    while (cleanupsHere.length > 0) await cleanupsHere.pop()?.();
  });

  it('ok/12 clients through A → B with cached-key tokens: all 200; rotated-key tokens 401 while it flaps, 200 once back', async () => {
    const ca = await TestCa.create('example.org');
    const app = await startApp();
    cleanupsHere.push(() => app.close());
    // Plain http on loopback: the sidecar config has no caFile key yet to trust a private CA for https.
    const jwks = new FlappingJwks();
    const [oldKey, newKey] = await Promise.all([signingKey('2026-11'), signingKey('2026-12')]);
    jwks.keys = [oldKey];
    await jwks.up();
    cleanupsHere.push(() => jwks.down().catch(() => undefined));

    // B verifies end-user tokens; its clock is the test's, so cooldowns pass without waiting.
    let offset = 0;
    const logB = captureLogger('sidecar');
    const metricsB = new Metrics();
    const idB = ca.idFor('/ns/shop/sa/b');
    const svidB = await ca.issue({ id: idB });
    const b: RunningSidecar = await startSidecar(
      testConfig({ appPort: app.port, endUserIssuer: { url: jwks.url, audience: AUDIENCE } }),
      {
        logger: logB.logger,
        metrics: metricsB,
        holder: new CredentialHolder({ svid: svidB.svid, bundle: ca.bundle }),
        now: () => new Date(Date.now() + offset),
      },
    );
    cleanupsHere.push(() => b.close(0));
    const a = await startTestSidecar(
      ca,
      ca.idFor('/ns/shop/sa/a'),
      testConfig({ appPort: 1, routes: { 'b.mesh': { address: `127.0.0.1:${b.inboundPort}`, ids: [idB] } } }),
    );
    cleanupsHere.push(() => a.sidecar.close(0));
    const dispatcher = new Agent({ connections: 12 });
    cleanupsHere.push(() => dispatcher.close());
    const call = async (token: string): Promise<{ status: number; code?: string }> => {
      const res = await request(`http://127.0.0.1:${a.sidecar.outboundPort}/orders`, {
        headers: { host: 'b.mesh', authorization: `Bearer ${token}` },
        dispatcher,
      });
      const text = await res.body.text();
      return res.statusCode === 200 ? { status: 200 } : { status: res.statusCode, code: JSON.parse(text).code };
    };
    const loads = async (result: string): Promise<number> => {
      const text = await metricsB.registry.getSingleMetricAsString('meshauth_enduser_jwks_refreshes_total');
      const line = text.split('\n').find((l) => l.includes(`result="${result}"`));
      return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
    };

    const cached = await endUserToken(oldKey, jwks.url, AUDIENCE, 'alice', 3600);
    const rotated = await endUserToken(newKey, jwks.url, AUDIENCE, 'bob', 3600);
    await waitFor('B to accept the cached key', async () => (await call(cached)).status === 200 || undefined);

    let stop = false;
    const outcomes: (number | string)[] = [];
    const clients = Array.from({ length: 12 }, async () => {
      while (!stop) {
        try {
          outcomes.push((await call(cached)).status);
        } catch (error) {
          outcomes.push((error as Error).message);
        }
        await new Promise((resolve) => setTimeout(resolve, 20)); // paced, as above: ≤ 50 req/s per client
      }
    });

    const faults: [Mode | 'down', string][] = [
      ['down', 'network'],
      ['garbage', 'invalid_json'],
      ['status_500', 'status'],
      ['stall', 'timeout'],
      ['huge', 'too_large'],
    ];
    for (const [step, failure] of faults) {
      if (step === 'down') await jwks.down();
      else await jwks.serve(step);
      offset += COOLDOWN_MS + 1;
      expect(await call(rotated), step).toEqual({ status: 401, code: 'MESHAUTH_ERR_TOKEN_INVALID' });
      expect(await loads(failure), step).toBe(1);
    }
    jwks.keys = [newKey, oldKey];
    await jwks.serve('ok');
    offset += COOLDOWN_MS + 1;
    expect(await call(rotated)).toEqual({ status: 200 });
    stop = true;
    await Promise.all(clients);

    expect(outcomes.length).toBeGreaterThan(0);
    expect(outcomes.filter((o) => o !== 200)).toEqual([]);
    for (const [, failure] of faults) {
      const lines = logB.records().filter((r) => r.msg === FAILED && r.failure === failure);
      expect(lines, failure).toHaveLength(1);
      expect(lines[0], failure).toMatchObject({ level: 'warn', component: 'authn', cachedKeys: 1 });
    }
    expect(b.ready()).toBe(true);
    console.log(JSON.stringify({ pairRequestsOk: outcomes.length }));
  }, 60_000);
});
