// JWT-SVID signing key rotation on a running CA (TLS on 127.0.0.1): after `ca rotate --jwt-key` (the function the CLI
// runs) the new key is in /v1/jwks at once and signs only after the publication delay, so a verifier that fetched the
// JWKS just before the rotation is past its unknown-kid cooldown before it meets the new kid (found in review: the key
// signed at once and verifiers refused its tokens for 30 s). The old key stays in /v1/jwks while any token it signed
// can still be valid, and leaves it only after the last of them expired. The server's clock is offset to get there
// without waiting.
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, type JSONWebKeySet, jwtVerify } from 'jose';
import { Agent, request } from 'undici';
import { beforeAll, describe, expect, it } from 'vitest';
import * as caClient from '../../src/agent/ca-client.js';
import {
  type CaServer,
  createJoinToken,
  JWT_KEY_PUBLICATION_DELAY_MS,
  loadCaMaterial,
  RETIRED_KEY_RETENTION_MS,
  rotateJwtSigningKey,
  startCaServer,
} from '../../src/ca/index.js';
import { TrustDomain } from '../../src/identity/index.js';
import { createCsrPem, exportPrivateKeyPem, generateKeyPair } from '../../src/pki/index.js';
import { Metrics } from '../../src/telemetry/index.js';
import { startClockedCa } from '../helpers/ca-dir.js';
import { logLines } from '../helpers/log-lines.js';
import { waitFor } from '../helpers/wait.js';

const ID = 'spiffe://example.org/ns/shop/sa/web';
const TD = TrustDomain.parse('example.org');
const AUDIENCE = 'https://api.example.com';
let dir: string;
let server: CaServer;
let anonymous: Agent;
let workload: Agent;
let clockOffsetMs = 0;
const log = logLines();

beforeAll(async () => {
  const ca = await startClockedCa(log.logger, () => new Date(Date.now() + clockOffsetMs));
  ({ dir, server, anonymous } = ca);
  const { bundlePem } = ca;
  const keys = await generateKeyPair('p256');
  const response = await caClient.requestSvid(
    { caUrl: server.url, bundlePem, trustDomain: TD },
    { csrPem: await createCsrPem(keys), token: await createJoinToken({ dir, id: ID, ttlMs: 60_000 }) },
  );
  workload = new Agent({
    connect: { ca: bundlePem, cert: response.certChainPem.join(''), key: await exportPrivateKeyPem(keys.privateKey) },
  });
  return async () => {
    await workload.close();
    await ca.close();
  };
});

async function jwtSvid(): Promise<string> {
  const response = await request(`${server.url}/v1/token`, {
    method: 'POST',
    dispatcher: workload,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `grant_type=client_credentials&audience=${encodeURIComponent(AUDIENCE)}`,
  });
  expect(response.statusCode).toBe(200);
  return ((await response.body.json()) as { access_token: string }).access_token;
}

async function jwks(): Promise<JSONWebKeySet> {
  const response = await request(`${server.url}/v1/jwks`, { dispatcher: anonymous });
  expect(response.statusCode).toBe(200);
  return (await response.body.json()) as JSONWebKeySet;
}

const kidOf = (token: string) => decodeProtectedHeader(token).kid;

async function verifies(token: string, keys: JSONWebKeySet): Promise<boolean> {
  return jwtVerify(token, createLocalJWKSet(keys), { issuer: server.issuer, audience: AUDIENCE }).then(
    () => true,
    () => false,
  );
}

describe('ca rotate --jwt-key', () => {
  it('ok/new key published at once, signs after the delay; old key kept until its last token expired', async () => {
    const before = await jwtSvid();
    const oldKid = kidOf(before);
    expect((await jwks()).keys.map((k) => k.kid)).toEqual([oldKid]);

    const rotation = await rotateJwtSigningKey(dir);
    expect(rotation.previousKid).toBe(oldKid);
    const newKid = rotation.kid;

    // The running server reads the new key within its one-second file check and publishes it at once, after the key
    // that still signs: poll, bounded.
    const published = await waitFor(
      'the new key in /v1/jwks',
      async () => {
        const keys = (await jwks()).keys.map((k) => k.kid);
        return keys.includes(newKid) ? keys : undefined;
      },
      4_000,
      100,
    );
    expect(published).toEqual([oldKid, newKid]);
    const [line] = log.find({ event: 'jwt_key_published', kid: newKid, activeKid: oldKid });
    const signsFrom = Date.parse((line as { signsFrom: string }).signsFrom);
    expect(signsFrom - Date.now()).toBeGreaterThan(JWT_KEY_PUBLICATION_DELAY_MS - 10_000);

    // Until then the old key signs; the last of its tokens is signed just before the switch.
    expect(kidOf(await jwtSvid())).toBe(oldKid);
    clockOffsetMs = signsFrom - Date.now() - 1_000;
    const lastOld = await jwtSvid();
    expect(kidOf(lastOld)).toBe(oldKid);
    clockOffsetMs = signsFrom - Date.now() + 1_000;
    const after = await jwtSvid();
    expect(kidOf(after)).toBe(newKid);
    expect(log.find({ event: 'jwt_key_reloaded', kid: newKid, previousKid: oldKid })).toHaveLength(1);

    // Both keys published, active first: a token from before and one from after both verify.
    const during = await jwks();
    expect(during.keys.map((k) => k.kid)).toEqual([newKid, oldKid]);
    expect(during.keys.every((k) => k.d === undefined)).toBe(true);
    expect(await verifies(before, during)).toBe(true);
    expect(await verifies(lastOld, during)).toBe(true);
    expect(await verifies(after, during)).toBe(true);

    // The old key is published for the retention time from when it stopped signing (at least what the file says):
    // just before the end the last old-key token still verifies against what the CA serves; just after, it is gone.
    const publishedUntil = Math.max(signsFrom + RETIRED_KEY_RETENTION_MS, rotation.previousPublishedUntil.getTime());
    expect((decodeJwt(lastOld).exp as number) * 1000).toBeLessThan(publishedUntil - 5_000);
    clockOffsetMs = (decodeJwt(lastOld).exp as number) * 1000 - Date.now() - 1_000;
    expect(await verifies(lastOld, await jwks())).toBe(true);
    clockOffsetMs = publishedUntil - Date.now() - 5_000;
    expect((await jwks()).keys.map((k) => k.kid)).toEqual([newKid, oldKid]);
    clockOffsetMs = publishedUntil - Date.now() + 5_000;
    expect((await jwks()).keys.map((k) => k.kid)).toEqual([newKid]);
  });
});

describe('a CA directory without jwt.key (a Secret copied by hand)', () => {
  it('ok/replicas derive the same key from the intermediate; after an intermediate rotation both keys are published', async () => {
    const { mkdtempSync, copyFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { rotateIntermediate } = await import('../../src/ca/index.js');
    const copy = mkdtempSync(join(tmpdir(), 'meshauth-nojwt-'));
    for (const file of ['root.crt', 'root.key', 'intermediate.crt', 'intermediate.key', 'bundle.pem']) {
      copyFileSync(join(dir, file), join(copy, file));
    }
    const start = () =>
      startCaServer({
        dir: copy,
        listen: '127.0.0.1:0',
        svidTtlMs: 60_000,
        logger: log.logger,
        metrics: new Metrics(),
      });
    const [a, b] = await Promise.all([start(), start()]);
    const agent = new Agent({ connect: { ca: (await loadCaMaterial(copy)).bundle.toPem() } });
    const keysOf = async (server: CaServer) =>
      ((await (await request(`${server.url}/v1/jwks`, { dispatcher: agent })).body.json()) as JSONWebKeySet).keys.map(
        (k) => k.kid,
      );
    try {
      const first = await keysOf(a);
      expect(first).toHaveLength(1);
      expect(await keysOf(b)).toEqual(first);
      await rotateIntermediate(copy);
      const after = await waitFor(
        'both keys published',
        async () => {
          const keys = await keysOf(a);
          return keys.length >= 2 ? keys : undefined;
        },
        4_000,
        100,
      );
      // The previous derived key still signs (first) while the new one waits out its publication delay.
      expect(after).toHaveLength(2);
      expect(after[0]).toBe(first[0]);
      expect(after[1]).not.toBe(first[0]);
    } finally {
      await agent.close();
      await Promise.all([a.close(), b.close()]);
      rmSync(copy, { recursive: true, force: true });
    }
  });
});
