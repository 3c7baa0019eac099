// The JWT key ring of a replica serving from a Secret's copy of the CA directory, with its clock injected: a key
// rotated in is published at once and signs only after the publication delay, and the key it replaces stays published
// for a token's lifetime from when this replica stopped signing with it. Found in review: the new key signed at once
// (verifiers refused its tokens for their 30 s unknown-kid cooldown), and the old key's publication was counted from
// `ca rotate` on the operator's machine, so with the Secret applied minutes later it left the JWKS while tokens it
// had just signed were still valid.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CA_SECRET_FILES,
  JWT_KEY_PUBLICATION_DELAY_MS,
  JwtKeyRing,
  mintJwtSvid,
  RETIRED_KEY_RETENTION_MS,
  rotateJwtSigningKey,
} from '../../../src/ca/index.js';
import { SpiffeId } from '../../../src/identity/index.js';
import { silentLogger } from '../../../src/telemetry/index.js';
import { makeCaDir } from '../../helpers/ca-dir.js';
import { waitFor } from '../../helpers/wait.js';

const SUBJECT = SpiffeId.parse('spiffe://example.org/ns/shop/sa/web');
let operator: Awaited<ReturnType<typeof makeCaDir>>;
let secret: string;
let clock: Date;
let ring: JwtKeyRing;

beforeEach(async () => {
  operator = await makeCaDir(); // where `ca rotate --jwt-key --k8s-secret` runs
  secret = mkdtempSync(join(tmpdir(), 'meshauth-secret-')); // what the CA pod mounts
  for (const file of CA_SECRET_FILES) copyFileSync(join(operator.dir, file), join(secret, file));
  clock = new Date();
  ring = await JwtKeyRing.open(secret, silentLogger(), false, () => clock);
});
afterEach(() => {
  rmSync(secret, { recursive: true, force: true });
  operator.cleanup();
});

const kids = (at: Date) => ring.jwks(at).keys.map((key) => key.kid);
const later = (base: Date, ms: number) => new Date(base.getTime() + ms);

async function token(at: Date): Promise<string> {
  const key = ring.signingKey(at);
  return (
    await mintJwtSvid({ key, issuer: 'https://ca.example', subject: SUBJECT, audience: 'aud', ttlMs: 300_000, now: at })
  ).token;
}

function verifiesAt(jwt: string, at: Date): Promise<boolean> {
  return jwtVerify(jwt, createLocalJWKSet(ring.jwks(at)), { audience: 'aud', currentDate: at }).then(
    () => true,
    () => false,
  );
}

/** The kubelet delivering the rotated files, and the replica's file check noticing them (bounded poll). */
async function deliver(newKid: string): Promise<void> {
  for (const file of ['jwt.key', 'jwt-retired.json']) copyFileSync(join(operator.dir, file), join(secret, file));
  await waitFor('the replica reading the new key', async () => {
    await ring.refresh();
    return kids(clock).includes(newKid);
  });
}

describe('JwtKeyRing after ca rotate --jwt-key --k8s-secret', () => {
  it('ok/the new key is published at once and signs only after the publication delay', async () => {
    const oldKid = ring.signingKey(clock).kid;
    const rotation = await rotateJwtSigningKey(operator.dir, clock);
    await deliver(rotation.kid);
    const seen = clock;
    expect(kids(seen)).toEqual([oldKid, rotation.kid]);
    expect(ring.signingKey(later(seen, JWT_KEY_PUBLICATION_DELAY_MS - 1_000)).kid).toBe(oldKid);
    expect(ring.signingKey(later(seen, JWT_KEY_PUBLICATION_DELAY_MS)).kid).toBe(rotation.kid);
    expect(kids(later(seen, JWT_KEY_PUBLICATION_DELAY_MS))).toEqual([rotation.kid, oldKid]);
  });

  it('ok/applied 10 minutes after ca rotate, the old key stays published until its last token expired', async () => {
    const oldKid = ring.signingKey(clock).kid;
    // `ca rotate` ran 10 minutes before the Secret reached this replica: the file's `until` is already past.
    const rotation = await rotateJwtSigningKey(operator.dir, later(clock, -10 * 60_000));
    expect(rotation.previousPublishedUntil.getTime()).toBeLessThan(clock.getTime());
    await deliver(rotation.kid);
    const switchAt = later(clock, JWT_KEY_PUBLICATION_DELAY_MS);

    const lastOld = await token(later(switchAt, -1));
    expect(decodeProtectedHeader(lastOld).kid).toBe(oldKid);
    expect(ring.signingKey(switchAt).kid).toBe(rotation.kid);

    const beforeExpiry = later(switchAt, 300_000 - 10_000);
    expect(kids(beforeExpiry)).toEqual([rotation.kid, oldKid]);
    expect(await verifiesAt(lastOld, beforeExpiry)).toBe(true);
    expect(kids(later(switchAt, RETIRED_KEY_RETENTION_MS - 1_000))).toContain(oldKid);
    expect(kids(later(switchAt, RETIRED_KEY_RETENTION_MS))).toEqual([rotation.kid]);
  });

  it('ok/a second rotation before the first key signed: the old key signs on, then the second', async () => {
    const oldKid = ring.signingKey(clock).kid;
    const first = await rotateJwtSigningKey(operator.dir, clock);
    await deliver(first.kid);
    clock = later(clock, 30_000);
    const second = await rotateJwtSigningKey(operator.dir, clock);
    await deliver(second.kid);
    expect(kids(clock)).toEqual([oldKid, second.kid, first.kid]);
    expect(ring.signingKey(later(clock, JWT_KEY_PUBLICATION_DELAY_MS - 1_000)).kid).toBe(oldKid);
    expect(ring.signingKey(later(clock, JWT_KEY_PUBLICATION_DELAY_MS)).kid).toBe(second.kid);
  });

  // Found in review: jwt-retired.json kept the first old key only until the first rotation + delay + retention, while
  // the running replicas signed with it until the second key's delay was up; a replica started in between published
  // no such key and verifiers that loaded its JWKS refused those tokens.
  it('fail/two rotations under the delay apart: a replica started later publishes the old key while its tokens live', async () => {
    const oldKid = ring.signingKey(clock).kid;
    const start = clock;
    const first = await rotateJwtSigningKey(operator.dir, start);
    await deliver(first.kid);
    clock = later(start, 100_000);
    const second = await rotateJwtSigningKey(operator.dir, clock);
    await deliver(second.kid);
    const switchAt = later(clock, JWT_KEY_PUBLICATION_DELAY_MS);
    const lastOld = await token(later(switchAt, -1_000));
    expect(decodeProtectedHeader(lastOld).kid).toBe(oldKid);

    const lastExpiry = later(switchAt, 300_000 - 1_000);
    const restarted = await JwtKeyRing.open(operator.dir, silentLogger(), false, () => lastExpiry);
    const keys = restarted.jwks(later(lastExpiry, -10_000));
    expect(keys.keys.map((key) => key.kid)).toContain(oldKid);
    const verified = await jwtVerify(lastOld, createLocalJWKSet(keys), {
      audience: 'aud',
      currentDate: later(lastExpiry, -10_000),
    });
    expect(verified.protectedHeader.kid).toBe(oldKid);
  });
});
