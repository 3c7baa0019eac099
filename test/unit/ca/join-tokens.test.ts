// Join tokens (SPEC §4, security.md A06/A07): stored hashed, single use under concurrency, expiring.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumeJoinToken, createJoinToken } from '../../../src/ca/index.js';
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
});
