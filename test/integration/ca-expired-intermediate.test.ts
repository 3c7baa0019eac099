// A CA whose intermediate has expired refuses to sign (503 MESHAUTH_ERR_CA_UNAVAILABLE) before it spends the
// caller's credential (found by an outside audit): it used to answer 200 with a leaf that had expired before it
// began (NotAfter clamped to the intermediate's, NotBefore a minute ago) and consumed the single-use join token.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CaServer, createJoinToken, initCa, startCaServer } from '../../src/ca/index.js';
import { createCsrPem, generateKeyPair } from '../../src/pki/index.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';

const ID = 'spiffe://example.org/ns/shop/sa/web';
const DAY = 24 * 3_600_000;
let root: string;
let dir: string;
let server: CaServer;
let agent: Agent;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'meshauth-ca-expired-'));
  dir = join(root, 'certs');
  // Initialised 40 days ago: the root is valid for years, the 30-day intermediate expired 10 days ago.
  await initCa({ dir, trustDomain: 'example.org', now: new Date(Date.now() - 40 * DAY) });
  server = await startCaServer({
    dir,
    listen: '127.0.0.1:0',
    svidTtlMs: 3_600_000,
    logger: silentLogger(),
    metrics: new Metrics(),
    workers: 0,
  });
  // A client that does not verify the serving certificate (curl -k, a script): the API must still refuse to sign.
  agent = new Agent({ connect: { rejectUnauthorized: false } });
});

afterAll(async () => {
  await agent.close();
  await server.close();
  rmSync(root, { recursive: true, force: true });
});

async function post(token: string) {
  const csr = await createCsrPem(await generateKeyPair('p256'));
  const response = await request(`${server.url}/v1/svid`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ csr, token }),
  });
  return { status: response.statusCode, json: (await response.body.json()) as { certChain?: string[]; code?: string } };
}

describe('CA with an expired intermediate', () => {
  it('fail/refuses to sign (503) and leaves the join token unused', async () => {
    const token = await createJoinToken({ dir, id: ID, ttlMs: 60_000 });
    const first = await post(token);
    expect(first.status, 'the CA signed with an expired intermediate').toBe(503);
    expect(first.json.code).toBe('MESHAUTH_ERR_CA_UNAVAILABLE');
    // The token was not spent: the same answer again, not "unknown or used token".
    const second = await post(token);
    expect(second.json.code).toBe('MESHAUTH_ERR_CA_UNAVAILABLE');
  });
});
