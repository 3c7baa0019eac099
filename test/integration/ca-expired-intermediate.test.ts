// A CA whose intermediate cannot sign a usable leaf now — expired, or not valid yet (a clock set back, material made
// ahead of time) — refuses to sign (503 MESHAUTH_ERR_CA_UNAVAILABLE) before it spends the caller's credential
// (found by an outside audit): it used to answer 200 with a leaf that had expired before it began (NotAfter clamped
// to the intermediate's, NotBefore a minute ago) and consumed the single-use join token.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { type CaServer, createJoinToken, initCa, startCaServer } from '../../src/ca/index.js';
import { createCsrPem, generateKeyPair } from '../../src/pki/index.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { caRejections } from '../helpers/ca-metrics.js';

const ID = 'spiffe://example.org/ns/shop/sa/web';
const DAY = 24 * 3_600_000;
// A client that does not verify the serving certificate (curl -k, a script): the API must still refuse to sign.
const agent = new Agent({ connect: { rejectUnauthorized: false } });
const cleanups: Array<() => Promise<void> | void> = [];

afterAll(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
  await agent.close();
});

/** A CA initialised `offsetMs` from now (its 30-day intermediate dated from then), serving on 127.0.0.1. */
async function caMadeAt(offsetMs: number): Promise<{ dir: string; server: CaServer; metrics: Metrics }> {
  const root = mkdtempSync(join(tmpdir(), 'meshauth-ca-validity-'));
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, 'certs');
  await initCa({ dir, trustDomain: 'example.org', now: new Date(Date.now() + offsetMs) });
  const metrics = new Metrics();
  const server = await startCaServer({
    dir,
    listen: '127.0.0.1:0',
    svidTtlMs: 3_600_000,
    logger: silentLogger(),
    metrics,
    workers: 0,
  });
  cleanups.push(() => server.close());
  return { dir, server, metrics };
}

async function post(server: CaServer, token: string) {
  const csr = await createCsrPem(await generateKeyPair('p256'));
  const response = await request(`${server.url}/v1/svid`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ csr, token }),
  });
  return { status: response.statusCode, json: (await response.body.json()) as { certChain?: string[]; code?: string } };
}

describe('CA whose intermediate cannot sign now', () => {
  it.each([
    // Initialised 40 days ago: the root is valid for years, the 30-day intermediate expired 10 days ago.
    ['fail/expired: 503, the join token unused', -40 * DAY, 'intermediate_expired'],
    ['fail/not valid yet: 503, the join token unused', 2 * DAY, 'intermediate_not_yet_valid'],
  ])('%s', async (_name, offsetMs, reason) => {
    const { dir, server, metrics } = await caMadeAt(offsetMs);
    const token = await createJoinToken({ dir, id: ID, ttlMs: 60_000 });
    const first = await post(server, token);
    expect(first.status, 'the CA signed with an intermediate it cannot use now').toBe(503);
    expect(first.json.code).toBe('MESHAUTH_ERR_CA_UNAVAILABLE');
    // The token was not spent: the same answer again, not "unknown or used token".
    const second = await post(server, token);
    expect(second.json.code).toBe('MESHAUTH_ERR_CA_UNAVAILABLE');
    expect(await caRejections(metrics, reason)).toBe(2);
  });
});
