// Rotation under traffic, with no failed request while certificates rotate: both sidecars get new SVIDs several times
// while concurrent requests flow; no request fails, and new connections use the new certificates.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SidecarPair, startPair, viaProxy } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

const ROTATIONS = 6;
const WORKERS = 8;
const MAX_REQUESTS_PER_WORKER = 2_000;

describe('credential rotation under load', () => {
  let ca: TestCa;
  let pair: SidecarPair;

  beforeAll(async () => {
    ca = await TestCa.create();
    pair = await startPair(ca);
  });
  afterAll(async () => {
    await pair?.close();
  });

  it('ok/zero failed requests across repeated rotations of both sidecars', async () => {
    let rotating = true;
    const statuses = new Map<number, number>();
    const errors: string[] = [];
    const worker = async () => {
      for (let i = 0; i < MAX_REQUESTS_PER_WORKER && rotating; i++) {
        try {
          const res = await viaProxy(pair.a.sidecar.outboundPort, `http://b.mesh/r${i}`);
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        } catch (error) {
          errors.push(String(error));
        }
      }
    };
    const workers = Array.from({ length: WORKERS }, worker);
    const serials: string[] = [];
    // Between rotations, traffic flows: a round of requests (one per worker) completes under each credential set.
    const answered = () => [...statuses.values()].reduce((sum, n) => sum + n, 0) + errors.length;
    const aRound = async () => {
      const mark = answered();
      await waitFor('a round of requests', () => answered() >= mark + WORKERS, 10_000, 10);
    };
    for (let r = 0; r < ROTATIONS; r++) {
      await aRound();
      const [newA, newB] = await Promise.all([ca.issue({ id: pair.idA }), ca.issue({ id: pair.idB })]);
      pair.a.holder.set({ svid: newA.svid, bundle: ca.bundle });
      pair.b.holder.set({ svid: newB.svid, bundle: ca.bundle });
      serials.push(newA.leaf.serialNumber);
    }
    await aRound();
    rotating = false;
    await Promise.all(workers);

    expect(errors).toEqual([]);
    expect([...statuses.keys()]).toEqual([200]);
    expect(statuses.get(200)).toBeGreaterThan(ROTATIONS);
    // After the last rotation, the connection A → B is a new one made with A's newest SVID: the hash in XFCC
    // is the SHA-256 of that leaf.
    await viaProxy(pair.a.sidecar.outboundPort, 'http://b.mesh/after');
    const last = pair.a.holder.current?.svid.leaf;
    const { createHash } = await import('node:crypto');
    const hash = createHash('sha256')
      .update(Buffer.from(last?.rawData ?? new ArrayBuffer(0)))
      .digest('hex');
    expect(pair.appB.seen.at(-1)?.headers['x-forwarded-client-cert']).toContain(`Hash=${hash}`);
    expect(serials).toHaveLength(ROTATIONS);
  }, 60_000);
});
