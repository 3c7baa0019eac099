// The gateway's JWT-SVID verifier when the CA's JWKS (real HTTPS on 127.0.0.1 under a private CA, trusted as
// `ca.bundle`) fails: found by an outside test (2026-12-03) — a 500, garbage or a closed port wrote no log line and
// counted nothing. Every load is now counted in meshauth_gateway_jwt_svid_jwks_refreshes_total{result}; each kind of
// failure warns once however long it lasts, a change of symptom warns again, recovery is one info line; a key set
// without a usable key keeps the last good keys.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { JwtSvidVerifier } from '../../src/gateway/jwt-svid-verifier.js';
import { TrustDomain } from '../../src/identity/index.js';
import { Metrics } from '../../src/telemetry/index.js';
import { type SigningKey, signingKey, tokenRejection } from '../helpers/end-user-keys.js';
import { captureLogger } from '../helpers/fault-harness.js';
import { FlappingJwks } from '../helpers/flapping-jwks.js';
import { makeWebhookCert } from '../helpers/webhook-tls.js';

const AUDIENCE = 'shop-gateway';
const COOLDOWN_MS = 30_000;
const FAILED = 'CA JWKS refresh failed; keeping the last good key set';

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  vi.useRealTimers();
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

interface Setup {
  readonly jwks: FlappingJwks;
  readonly verifier: JwtSvidVerifier;
  readonly metrics: Metrics;
  readonly log: ReturnType<typeof captureLogger>;
}

async function setup(keys: SigningKey[]): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'meshauth-jwt-svid-failures-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const tls = makeWebhookCert(dir, 'ca');
  const bundleFile = join(dir, 'bundle.pem');
  writeFileSync(bundleFile, tls.caPem);
  const jwks = new FlappingJwks({ key: tls.keyPem, cert: tls.certPem });
  jwks.keys = keys;
  await jwks.up();
  cleanups.push(() => jwks.down().catch(() => undefined));
  const metrics = new Metrics();
  const log = captureLogger('gateway');
  const verifier = new JwtSvidVerifier({
    settings: { issuer: jwks.url, audiences: [AUDIENCE] },
    caUrl: jwks.url,
    bundleFile,
    trustDomain: TrustDomain.parse('example.org'),
    logger: log.logger,
    metrics,
  });
  cleanups.push(() => verifier.close());
  return { jwks, verifier, metrics, log };
}

function jwtSvid(issuer: string, key: SigningKey): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'JWT' })
    .setIssuer(issuer)
    .setAudience(AUDIENCE)
    .setSubject('spiffe://example.org/ns/batch/sa/reports')
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(key.privateKey);
}

async function loads(metrics: Metrics): Promise<Record<string, number>> {
  const { values } = await metrics.gatewayJwtSvidJwksRefreshes.get();
  return Object.fromEntries(values.map((v) => [String(v.labels.result), v.value]));
}

/** Past the unknown-kid cooldown, so the next token may load the key set again (only Date is faked). */
function afterCooldown(): void {
  vi.setSystemTime(Date.now() + COOLDOWN_MS + 1);
}

describe("the CA's JWKS fails at the gateway's JWT-SVID verifier", () => {
  it('fail/each load counted; one warning per kind of failure, one info line on recovery', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    const [key, rotated] = await Promise.all([signingKey('ca-1'), signingKey('ca-2')]);
    const { jwks, verifier, metrics, log } = await setup([key]);
    const token = await jwtSvid(jwks.url, key);

    // An outage of two attempts with the same symptom: two loads counted, one warning.
    jwks.mode = 'status_500';
    expect(await tokenRejection(verifier, token)).toBe('jwks_unavailable');
    afterCooldown();
    expect(await tokenRejection(verifier, token)).toBe('jwks_unavailable');
    jwks.mode = 'garbage';
    afterCooldown();
    expect(await tokenRejection(verifier, token)).toBe('jwks_unavailable');
    await jwks.down();
    afterCooldown();
    expect(await tokenRejection(verifier, token)).toBe('jwks_unavailable');
    const warnings = log.records().filter((r) => r.msg === FAILED);
    expect(warnings.map((w) => w.failure)).toEqual(['status', 'invalid_json', 'network']);
    expect(warnings.every((w) => w.level === 'warn' && w.issuer === jwks.url && w.cachedKeys === 0)).toBe(true);
    expect(await loads(metrics)).toEqual({ status: 2, invalid_json: 1, network: 1 });

    // Back: the next token after the cooldown loads the keys, with one info line.
    await jwks.serve('ok');
    afterCooldown();
    expect(await tokenRejection(verifier, token)).toBeUndefined();
    expect((await loads(metrics)).ok).toBe(1);
    expect(log.records().filter((r) => r.msg === 'CA JWKS loaded again' && r.level === 'info')).toHaveLength(1);

    // A key set without a usable key (a new kid sends the verifier to load it): counted and warned, and the
    // keys already loaded keep verifying.
    jwks.mode = 'empty';
    afterCooldown();
    expect(await tokenRejection(verifier, await jwtSvid(jwks.url, rotated))).toBe('unknown_kid');
    expect((await loads(metrics)).no_usable_key).toBe(1);
    const last = log.records().filter((r) => r.msg === FAILED);
    expect(last.at(-1)).toMatchObject({ failure: 'no_usable_key', cachedKeys: 1 });
    expect(await tokenRejection(verifier, token)).toBeUndefined();
    expect(jwks.requests).toBe(5);
  });
});

// Found by the same outside test: keys once loaded never expired while every refresh failed, so a key the CA had
// retired kept verifying at a gateway cut off from the CA. Past max-stale (24 h, as for end-user issuers) without a
// successful load the keys are dropped; the next load once the CA answers again restores them.
describe("the gateway's JWT-SVID verifier cut off from the CA for longer than max-stale", () => {
  it('fail/keys not confirmed for 24 h no longer verify; they do again once the CA answers', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    const key = await signingKey('ca-1');
    const { jwks, verifier } = await setup([key]);
    expect(await tokenRejection(verifier, await jwtSvid(jwks.url, key))).toBeUndefined();

    await jwks.down();
    vi.setSystemTime(Date.now() + 23 * 3600_000);
    expect(await tokenRejection(verifier, await jwtSvid(jwks.url, key))).toBeUndefined(); // stale, not yet too stale
    vi.setSystemTime(Date.now() + 3600_000 + 1);
    expect(await tokenRejection(verifier, await jwtSvid(jwks.url, key))).toBe('jwks_unavailable');

    await jwks.serve('ok');
    afterCooldown();
    expect(await tokenRejection(verifier, await jwtSvid(jwks.url, key))).toBeUndefined();
  });
});
