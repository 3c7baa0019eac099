// Pruning join-token records: a record (unused in tokens/, spent in tokens/used/) whose expiry passed more than the
// grace ago is removed, one inside the grace or unexpired is kept, a record another replica removes mid-pass does not
// fail the pass, an unreadable one is kept and reported once, and a pass reads a bounded number of records. Before,
// nothing ever removed a record: a CA issuing join tokens for years kept every one on disk.
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

/** Called before the real readFile/unlink of a path under tokens/: a test removes the file there, as a replica would. */
const hooks = vi.hoisted(() => ({
  beforeRead: undefined as ((path: string) => void) | undefined,
  beforeUnlink: undefined as ((path: string) => void) | undefined,
  reads: 0,
}));

vi.mock('node:fs/promises', async (original) => {
  const fs = await original<typeof import('node:fs/promises')>();
  const readFile = ((path: Parameters<typeof fs.readFile>[0], ...rest: unknown[]) => {
    if (String(path).includes(`${'/'}tokens${'/'}`)) {
      hooks.reads += 1;
      hooks.beforeRead?.(String(path));
    }
    return (fs.readFile as (...args: unknown[]) => ReturnType<typeof fs.readFile>)(path, ...rest);
  }) as typeof fs.readFile;
  const unlink = (async (path: Parameters<typeof fs.unlink>[0]) => {
    hooks.beforeUnlink?.(String(path));
    return fs.unlink(path);
  }) as typeof fs.unlink;
  return { ...fs, default: { ...fs, readFile, unlink }, readFile, unlink };
});

const { consumeJoinToken, createJoinToken, hashToken } = await import('../../../src/ca/join-tokens.js');
const { JOIN_TOKEN_PRUNE_GRACE_MS, JoinTokenPruner, startJoinTokenPruning } = await import(
  '../../../src/ca/join-token-prune.js'
);
const { MeshauthError } = await import('../../../src/errors/index.js');
const { makeCaDir } = await import('../../helpers/ca-dir.js');
const { logLines } = await import('../../helpers/log-lines.js');
const { waitFor } = await import('../../helpers/wait.js');

const ID = 'spiffe://example.org/ns/a/sa/b';
const NOW = new Date('2030-06-01T12:00:00Z');
const TTL_MS = 60_000;
const MINUTE = 60_000;

let dir: string;
const cleanups: Array<() => Promise<void> | void> = [];
beforeEach(async () => {
  const ca = await makeCaDir();
  dir = ca.dir;
  cleanups.push(ca.cleanup);
});
afterEach(async () => {
  hooks.beforeRead = undefined;
  hooks.beforeUnlink = undefined;
  hooks.reads = 0;
  while (cleanups.length > 0) await cleanups.pop()?.();
});

interface Record {
  readonly token: string;
  readonly file: string;
}

/** A record whose token expired `expiredAgoMs` before NOW (negative: still valid), spent when `used`. */
async function record(expiredAgoMs: number, used = false): Promise<Record> {
  const created = new Date(NOW.getTime() - expiredAgoMs - TTL_MS);
  const token = await createJoinToken({ dir, id: ID, ttlMs: TTL_MS, now: created });
  if (used) await consumeJoinToken(dir, token, created);
  const name = `${hashToken(token)}.json`;
  return { token, file: used ? join(dir, 'tokens', 'used', name) : join(dir, 'tokens', name) };
}

async function reasonOf(token: string): Promise<string | undefined> {
  const error = await consumeJoinToken(dir, token, NOW).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MeshauthError);
  return (error as InstanceType<typeof MeshauthError>).reason;
}

describe('join-token pruning', () => {
  it('ok/records past expiry and grace are removed from tokens/ and tokens/used/; then the token is token_unknown', async () => {
    const unused = await record(JOIN_TOKEN_PRUNE_GRACE_MS + MINUTE);
    const used = await record(JOIN_TOKEN_PRUNE_GRACE_MS + MINUTE, true);
    const logs = logLines('ca', 'info');

    const result = await new JoinTokenPruner({ dir, logger: logs.logger }).prune(NOW);

    expect(result).toEqual({ removed: 2, unreadable: 0, more: false });
    expect(existsSync(unused.file)).toBe(false);
    expect(existsSync(used.file)).toBe(false);
    expect(logs.find({ event: 'join_tokens_pruned' })).toEqual([expect.objectContaining({ removed: 2, more: false })]);
    expect(await reasonOf(unused.token)).toBe('token_unknown');
    expect(await reasonOf(used.token)).toBe('token_unknown');
  });

  it('ok/records inside the grace or unexpired are kept and still answer token_expired / token_used', async () => {
    const inGrace = await record(JOIN_TOKEN_PRUNE_GRACE_MS - MINUTE);
    const usedInGrace = await record(JOIN_TOKEN_PRUNE_GRACE_MS - MINUTE, true);
    const live = await record(-10 * MINUTE);
    const usedLive = await record(-10 * MINUTE, true);
    const logs = logLines('ca', 'info');

    const result = await new JoinTokenPruner({ dir, logger: logs.logger }).prune(NOW);

    expect(result).toEqual({ removed: 0, unreadable: 0, more: false });
    for (const kept of [inGrace, usedInGrace, live, usedLive]) expect(existsSync(kept.file)).toBe(true);
    expect(logs.find({ event: 'join_tokens_pruned' }), 'no line for a pass that removed nothing').toEqual([]);
    expect(await reasonOf(inGrace.token)).toBe('token_expired');
    expect(await reasonOf(usedInGrace.token)).toBe('token_used');
    expect((await consumeJoinToken(dir, live.token, NOW)).toString()).toBe(ID);
  });

  it.each([
    // The first record the pass reads, whichever it is, vanishes just before: the others must still be pruned.
    ['ok/a record another replica removes between the listing and the read does not fail the pass', 'beforeRead'],
    // The first record the pass removes, whichever it is, is removed first by "another replica": unlink finds ENOENT.
    [
      'ok/a record another replica removes between the read and the unlink is not counted and does not fail the pass',
      'beforeUnlink',
    ],
  ] as const)('%s', async (_name, hook) => {
    const records = [];
    for (let i = 0; i < 3; i++) records.push(await record(JOIN_TOKEN_PRUNE_GRACE_MS + MINUTE, true));
    let removedByReplica: string | undefined;
    hooks[hook] = (path) => {
      if (removedByReplica !== undefined) return;
      removedByReplica = path;
      rmSync(path);
    };
    const logs = logLines('ca', 'debug');

    const result = await new JoinTokenPruner({ dir, logger: logs.logger }).prune(NOW);

    expect(removedByReplica).toBeDefined();
    expect(result).toEqual({ removed: 2, unreadable: 0, more: false });
    for (const gone of records) expect(existsSync(gone.file)).toBe(false);
    expect(
      logs.lines.filter((line) => line.level !== 'info'),
      'no warning, no error',
    ).toEqual([]);
  });

  it('fail/a record that cannot be parsed is kept and reported once, over several passes', async () => {
    const broken = join(dir, 'tokens', `${'a'.repeat(64)}.json`);
    writeFileSync(broken, '{"id": "spiffe://example.org/x", "expiresAt": ');
    const noExpiry = join(dir, 'tokens', 'used', `${'b'.repeat(64)}.json`);
    mkdirSync(join(dir, 'tokens', 'used'), { recursive: true });
    writeFileSync(noExpiry, '{"id": "spiffe://example.org/x", "expiresAt": "tomorrow"}\n');
    const logs = logLines('ca', 'info');
    const pruner = new JoinTokenPruner({ dir, logger: logs.logger });

    expect(await pruner.prune(NOW)).toEqual({ removed: 0, unreadable: 2, more: false });
    expect(await pruner.prune(NOW)).toEqual({ removed: 0, unreadable: 2, more: false });

    expect(existsSync(broken)).toBe(true);
    expect(existsSync(noExpiry)).toBe(true);
    const reported = logs.find({ event: 'join_token_record_unreadable' });
    expect(reported.map((line) => line.file).sort()).toEqual([broken, noExpiry].sort());
  });

  it('ok/files that are not records (a temporary file, another name) are not read or removed', async () => {
    const temporary = join(dir, 'tokens', '.0123456789ab.tmp');
    const other = join(dir, 'tokens', 'notes.json');
    writeFileSync(temporary, '{"expiresAt": "2000-01-01T00:00:00Z"}');
    writeFileSync(other, '{"expiresAt": "2000-01-01T00:00:00Z"}');

    const result = await new JoinTokenPruner({ dir, logger: logLines().logger }).prune(NOW);

    expect(result).toEqual({ removed: 0, unreadable: 0, more: false });
    expect(hooks.reads).toBe(0);
    expect(existsSync(temporary) && existsSync(other)).toBe(true);
  });

  it('fail/a directory that refuses the removal: one warning, the pass resolves, the record stays', async () => {
    const stuck = await record(JOIN_TOKEN_PRUNE_GRACE_MS + MINUTE);
    hooks.beforeUnlink = () => {
      throw Object.assign(new Error('EROFS: read-only file system, unlink'), { code: 'EROFS', syscall: 'unlink' });
    };
    const logs = logLines('ca', 'info');

    const result = await new JoinTokenPruner({ dir, logger: logs.logger }).prune(NOW);

    expect(result).toEqual({ removed: 0, unreadable: 0, more: false });
    expect(existsSync(stuck.file)).toBe(true);
    expect(logs.find({ event: 'join_token_prune_failed' })).toHaveLength(1);
  });

  it('ok/a pass reads at most maxRecordsPerPass records per directory; the next passes go on where it stopped', async () => {
    const live = [];
    const expired = [];
    for (let i = 0; i < 3; i++) live.push(await record(-10 * MINUTE));
    for (let i = 0; i < 3; i++) expired.push(await record(JOIN_TOKEN_PRUNE_GRACE_MS + MINUTE));
    const pruner = new JoinTokenPruner({ dir, logger: logLines().logger, maxRecordsPerPass: 2 });

    const passes = [];
    for (let pass = 0; pass < 10; pass++) {
      hooks.reads = 0;
      const result = await pruner.prune(NOW);
      expect(hooks.reads, 'records read in one pass').toBeLessThanOrEqual(2);
      passes.push(result);
      if (!result.more) break;
    }

    expect(passes[0]?.more).toBe(true);
    // One walk over the six records, two a pass: a pass never starts over at records an earlier one kept.
    expect(passes).toHaveLength(3);
    expect(passes.reduce((sum, result) => sum + result.removed, 0)).toBe(3);
    for (const gone of expired) expect(existsSync(gone.file)).toBe(false);
    for (const kept of live) expect(existsSync(kept.file)).toBe(true);
  });

  it('ok/startJoinTokenPruning: a pass at once, then one per interval, until closed', async () => {
    const first = await record(JOIN_TOKEN_PRUNE_GRACE_MS + MINUTE);
    const pruning = startJoinTokenPruning({ dir, logger: logLines().logger, now: () => NOW, intervalMs: 20 });
    cleanups.push(() => pruning.close());
    await waitFor('the first pass', () => !existsSync(first.file));

    const later = await record(JOIN_TOKEN_PRUNE_GRACE_MS + MINUTE, true);
    await waitFor('a later pass', () => !existsSync(later.file));
    await pruning.close();
  });
});
