// `ca serve` prunes join-token records at start: over a CA directory holding records long expired (unused in
// tokens/, spent in tokens/used/), one inside the grace and a live one, a starting CA removes the first two, keeps the
// others, logs one `join_tokens_pruned` line, and a pruned token presented to it answers 401 token_unknown. Before,
// nothing ever removed a record.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { requestSvid } from '../../src/agent/ca-client.js';
import { consumeJoinToken, createJoinToken, hashToken, loadCaMaterial, startCaServer } from '../../src/ca/index.js';
import { JOIN_TOKEN_PRUNE_GRACE_MS } from '../../src/ca/join-token-prune.js';
import { MeshauthError } from '../../src/errors/index.js';
import { TrustDomain } from '../../src/identity/index.js';
import { createCsrPem, generateKeyPair } from '../../src/pki/index.js';
import { Metrics } from '../../src/telemetry/index.js';
import { makeCaDir } from '../helpers/ca-dir.js';
import { caRejections } from '../helpers/ca-metrics.js';
import { logLines } from '../helpers/log-lines.js';
import { waitFor } from '../helpers/wait.js';

const ID = 'spiffe://example.org/ns/shop/sa/web';
const TTL_MS = 60_000;
const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** A record whose token expired `expiredAgoMs` ago (negative: still valid), spent when `used`; its file. */
async function record(dir: string, expiredAgoMs: number, used = false): Promise<{ token: string; file: string }> {
  const created = new Date(Date.now() - expiredAgoMs - TTL_MS);
  const token = await createJoinToken({ dir, id: ID, ttlMs: TTL_MS, now: created });
  if (used) await consumeJoinToken(dir, token, created);
  const name = `${hashToken(token)}.json`;
  return { token, file: used ? join(dir, 'tokens', 'used', name) : join(dir, 'tokens', name) };
}

describe('ca serve and expired join-token records', () => {
  it('ok/a starting CA removes records past expiry and grace, keeps the rest; a pruned token is token_unknown', async () => {
    const ca = await makeCaDir();
    cleanups.push(ca.cleanup);
    const HOUR_AND_A_BIT = JOIN_TOKEN_PRUNE_GRACE_MS + 10 * 60_000;
    const expired = await record(ca.dir, HOUR_AND_A_BIT);
    const spent = await record(ca.dir, HOUR_AND_A_BIT, true);
    const inGrace = await record(ca.dir, JOIN_TOKEN_PRUNE_GRACE_MS - 10 * 60_000);
    const live = await record(ca.dir, -10 * 60_000);

    const metrics = new Metrics();
    const logs = logLines('ca', 'info');
    const server = await startCaServer({
      dir: ca.dir,
      listen: '127.0.0.1:0',
      svidTtlMs: 10 * 60_000,
      workers: 0,
      logger: logs.logger,
      metrics,
    });
    cleanups.push(() => server.close());

    await waitFor('the start-up prune pass', () => logs.find({ event: 'join_tokens_pruned' })[0]);
    expect(logs.find({ event: 'join_tokens_pruned' })).toEqual([expect.objectContaining({ removed: 2, more: false })]);
    expect(existsSync(expired.file)).toBe(false);
    expect(existsSync(spent.file)).toBe(false);
    expect(existsSync(inGrace.file)).toBe(true);
    expect(existsSync(live.file)).toBe(true);

    const bundlePem = (await loadCaMaterial(ca.dir)).bundle.toPem();
    const csrPem = await createCsrPem(await generateKeyPair('p256'));
    const refusal = await requestSvid(
      { caUrl: server.url, bundlePem, trustDomain: TrustDomain.parse('example.org') },
      { csrPem, token: expired.token },
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refusal).toBeInstanceOf(MeshauthError);
    expect((refusal as MeshauthError).code).toBe('MESHAUTH_ERR_CA_UNAUTHENTICATED');
    expect(await caRejections(metrics, 'token_unknown')).toBe(1);
  });
});
