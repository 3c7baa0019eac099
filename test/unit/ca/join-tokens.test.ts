// Join tokens: stored hashed, single use under concurrency, expiring.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumeJoinToken, createJoinToken, hashToken, spendJoinToken } from '../../../src/ca/index.js';
import { MeshauthError } from '../../../src/errors/index.js';
import { makeCaDir } from '../../helpers/ca-dir.js';

const ID = 'spiffe://example.org/ns/a/sa/b';
let dir: string;
let cleanup: () => void;

beforeAll(async () => {
  ({ dir, cleanup } = await makeCaDir());
});
afterAll(() => cleanup?.());

async function reasonOf(promise: Promise<unknown>): Promise<string | undefined> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MeshauthError);
  expect((error as MeshauthError).code).toBe('MESHAUTH_ERR_CA_UNAUTHENTICATED');
  expect((error as MeshauthError).message).not.toContain('token:');
  return (error as MeshauthError).reason;
}

describe('join tokens', () => {
  it('ok/a token is 256 bits of base64url, stored only as its SHA-256, and yields its ID once', async () => {
    const token = await createJoinToken({ dir, id: ID, ttlMs: 60_000 });
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const stored = createHash('sha256').update(token).digest('hex');
    expect(readdirSync(join(dir, 'tokens'))).toContain(`${stored}.json`);
    for (const file of readdirSync(join(dir, 'tokens'), { recursive: true, encoding: 'utf8' })) {
      if (file.endsWith('.json')) expect(readFileSync(join(dir, 'tokens', file), 'utf8')).not.toContain(token);
    }
    expect((await consumeJoinToken(dir, token, new Date())).toString()).toBe(ID);
    expect(await reasonOf(consumeJoinToken(dir, token, new Date()))).toBe('token_used');
  });

  it('fail/expired', async () => {
    const token = await createJoinToken({ dir, id: ID, ttlMs: 60_000, now: new Date(Date.now() - 61_000) });
    expect(await reasonOf(consumeJoinToken(dir, token, new Date()))).toBe('token_expired');
  });

  it.each([
    ['fail/unknown', 'A'.repeat(43)],
    ['fail/malformed', 'not-a-token'],
    ['fail/empty', ''],
    ['fail/path traversal', '../../root.key'],
    ['fail/oversized', 'A'.repeat(10_000)],
  ])('%s', async (_name, token) => {
    expect(await reasonOf(consumeJoinToken(dir, token, new Date()))).toBe('token_unknown');
  });

  it('ok/50 concurrent consumers: exactly one wins', async () => {
    const token = await createJoinToken({ dir, id: ID, ttlMs: 60_000 });
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, () => consumeJoinToken(dir, token, new Date())),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'rejected') expect((r.reason as MeshauthError).reason).toBe('token_used');
    }
  });

  it.each([
    ['fail/other trust domain', 'spiffe://evil.org/ns/a/sa/b'],
    ['fail/trust-domain ID', 'spiffe://example.org'],
    ['fail/malformed ID', 'spiffe://example.org/a/../b'],
    // Agents accept the CA by this ID alone: its holder could pose as the CA and collect bootstrap tokens.
    ["fail/the CA's own ID", 'spiffe://example.org/meshauth/ca'],
  ])('%s cannot get a token', async (_name, id) => {
    const error = await createJoinToken({ dir, id, ttlMs: 60_000 }).catch((e: unknown) => e);
    expect((error as MeshauthError).code).toBe('MESHAUTH_ERR_SPIFFE_ID_INVALID');
  });

  describe('given back when no SVID was issued', () => {
    const pendingFile = (token: string) => join(dir, 'tokens', `${hashToken(token)}.json`);
    const usedFile = (token: string) => join(dir, 'tokens', 'used', `${hashToken(token)}.json`);

    it('ok/the same record comes back (identity, expiry) and is spent once more, then used', async () => {
      const token = await createJoinToken({ dir, id: ID, ttlMs: 60_000 });
      const record = readFileSync(pendingFile(token), 'utf8');
      const spent = await spendJoinToken(dir, token, new Date());
      expect(spent.id.toString()).toBe(ID);
      expect(existsSync(pendingFile(token))).toBe(false);
      expect(await spent.giveBack()).toBe(true);
      expect(readFileSync(pendingFile(token), 'utf8')).toBe(record);
      expect(existsSync(usedFile(token))).toBe(false);
      expect((await consumeJoinToken(dir, token, new Date())).toString()).toBe(ID);
      expect(await reasonOf(consumeJoinToken(dir, token, new Date()))).toBe('token_used');
    });

    it('ok/while it is out a concurrent request is refused; once back, 50 concurrent consumers: exactly one wins', async () => {
      const token = await createJoinToken({ dir, id: ID, ttlMs: 60_000 });
      const spent = await spendJoinToken(dir, token, new Date());
      expect(await reasonOf(consumeJoinToken(dir, token, new Date()))).toBe('token_used');
      expect(await spent.giveBack()).toBe(true);
      const results = await Promise.allSettled(
        Array.from({ length: 50 }, () => consumeJoinToken(dir, token, new Date())),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) {
        if (r.status === 'rejected') expect((r.reason as MeshauthError).reason).toBe('token_used');
      }
    });

    it('ok/given back at most once: a second call never revives the token another request spent since', async () => {
      const token = await createJoinToken({ dir, id: ID, ttlMs: 60_000 });
      const first = await spendJoinToken(dir, token, new Date());
      expect(await first.giveBack()).toBe(true);
      await spendJoinToken(dir, token, new Date()); // the retry that got its SVID
      expect(await first.giveBack()).toBe(false);
      expect(await reasonOf(consumeJoinToken(dir, token, new Date()))).toBe('token_used');
    });

    it('ok/an expiry passed meanwhile still holds: the token comes back expired', async () => {
      const token = await createJoinToken({ dir, id: ID, ttlMs: 60_000 });
      const spent = await spendJoinToken(dir, token, new Date());
      expect(await spent.giveBack()).toBe(true);
      expect(await reasonOf(consumeJoinToken(dir, token, new Date(Date.now() + 61_000)))).toBe('token_expired');
    });

    it('ok/a check that refuses leaves the token unspent', async () => {
      const token = await createJoinToken({ dir, id: ID, ttlMs: 60_000 });
      const refused = new Error('identity mismatch');
      const error = await spendJoinToken(dir, token, new Date(), () => {
        throw refused;
      }).catch((e: unknown) => e);
      expect(error).toBe(refused);
      expect(existsSync(pendingFile(token))).toBe(true);
      expect((await consumeJoinToken(dir, token, new Date())).toString()).toBe(ID);
    });

    it('fail/the used record is gone (removed by hand): false, and the token stays unusable', async () => {
      const token = await createJoinToken({ dir, id: ID, ttlMs: 60_000 });
      const spent = await spendJoinToken(dir, token, new Date());
      rmSync(usedFile(token));
      expect(await spent.giveBack()).toBe(false);
      expect(await reasonOf(consumeJoinToken(dir, token, new Date()))).toBe('token_unknown');
    });
  });
});
