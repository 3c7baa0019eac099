// How an endpoint set follows hostile or unlucky DNS answers (the resolver is scripted, the clock is faked; no
// connection is made): a name with no address is asked again with backoff, not every second (a local process asking
// for names that do not exist could otherwise make the sidecar flood the cluster DNS); a failed AAAA query beside a
// good A answer keeps the IPv6 endpoints (it drained them all); a record set replaced wholesale is logged in one line,
// not one per endpoint; addresses no workload listens on are dropped, with one warning per distinct answer.
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { CredentialHolder } from '../../src/agent/credential-holder.js';
import type { Resolution } from '../../src/sidecar/endpoints/dns-resolver.js';
import { createLogger } from '../../src/telemetry/index.js';
import { ClientTlsContext } from '../../src/tls/index.js';
import { scriptedEndpointSet } from '../helpers/scripted-endpoint-set.js';
import { TestCa } from '../helpers/test-ca.js';

const answer = (addresses: string[], more: Partial<Resolution> = {}): Resolution => ({
  addresses,
  ttlSeconds: 1,
  ignored: [],
  overCap: 0,
  failedFamilies: [],
  ...more,
});

describe('an endpoint set and its DNS answers', () => {
  let ca: TestCa;
  const cleanups: (() => unknown)[] = [];
  beforeAll(async () => {
    ca = await TestCa.create();
  });
  afterEach(async () => {
    vi.useRealTimers();
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function endpointSet(next: () => Resolution) {
    const svid = await ca.issue({ id: ca.idFor('/ns/front/sa/web') });
    const tls = new ClientTlsContext(new CredentialHolder({ svid: svid.svid, bundle: ca.bundle }), { tls12: false });
    cleanups.push(() => tls.close());
    const lines: Record<string, unknown>[] = [];
    let queries = 0;
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const set = scriptedEndpointSet({
      ca,
      tls,
      port: 15006,
      clock: () => Date.now(), // faked with the timers
      logger: createLogger({ level: 'info', destination: { write: (l: string) => lines.push(JSON.parse(l)) } }),
      resolve: () => {
        queries += 1;
        return next();
      },
    });
    cleanups.push(() => set.close(0));
    await vi.advanceTimersByTimeAsync(0);
    return { set, lines, queries: () => queries };
  }

  it('fail/a name with no address is asked again with backoff (1, 2, 4, 8 s…), not every second', async () => {
    const { queries } = await endpointSet(() => answer([], { ttlSeconds: 0 }));
    expect(queries()).toBe(1);
    await vi.advanceTimersByTimeAsync(60_000);
    // 1 + 2 + 4 + 8 + 16 + 30 s: 6 more queries in a minute, where a query a second made 60.
    expect(queries()).toBeLessThanOrEqual(8);
  });

  it('ok/a request to a name with no address asks at once (at most once a second), not at the backoff time', async () => {
    let empty = true;
    const { set, queries } = await endpointSet(() => (empty ? answer([], { ttlSeconds: 0 }) : answer(['10.0.0.1'])));
    await vi.advanceTimersByTimeAsync(15_000); // queries at 0, 1, 3, 7, 15 s; the next due at 31 s
    const before = queries();
    // Within a second of the last query a request is answered at once that the name has no address.
    await expect(Promise.resolve(set.pick())).rejects.toMatchObject({ reason: 'no_endpoints' });
    expect(queries()).toBe(before);
    // The Service's pods became ready: a request a second later asks, and gets an endpoint.
    empty = false;
    await vi.advanceTimersByTimeAsync(1_000);
    const endpoint = await set.pick();
    expect(endpoint.address).toBe('10.0.0.1');
    expect(queries()).toBe(before + 1);
  });

  it('ok/an answer with addresses again goes back to the TTL', async () => {
    let empty = true;
    const { queries } = await endpointSet(() => (empty ? answer([], { ttlSeconds: 0 }) : answer(['10.0.0.1'])));
    await vi.advanceTimersByTimeAsync(7_000); // queries at 0, 1, 3, 7 s
    empty = false;
    const before = queries();
    await vi.advanceTimersByTimeAsync(30_000);
    // The next query is the backoff's (at 15 s); from there every second (TTL 1 s): 23 in the 30 s.
    expect(queries() - before).toBeGreaterThanOrEqual(20);
  });

  it('ok/a failed AAAA query beside a good A answer keeps the IPv6 endpoints', async () => {
    let next = answer(['10.0.0.1', 'fd00::1', 'fd00::2']);
    const { set } = await endpointSet(() => next);
    expect(set.endpoints.map((e) => e.address).sort()).toEqual(['10.0.0.1', 'fd00::1', 'fd00::2']);
    next = answer(['10.0.0.1', '10.0.0.3'], { failedFamilies: [6] });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(set.endpoints.map((e) => e.address).sort()).toEqual(['10.0.0.1', '10.0.0.3', 'fd00::1', 'fd00::2']);
    next = answer(['10.0.0.1']);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(set.endpoints.map((e) => e.address)).toEqual(['10.0.0.1']);
  });

  it('ok/a record set replaced wholesale is one drain line; a few removed endpoints one line each', async () => {
    const many = (base: number) => Array.from({ length: 40 }, (_, i) => `10.${base}.0.${i + 1}`);
    let next = answer(many(1));
    const { lines } = await endpointSet(() => next);
    next = answer(many(2));
    await vi.advanceTimersByTimeAsync(1_000);
    const drained = lines.filter((l) => l.msg === 'endpoint removed (no longer in DNS); draining');
    expect(drained).toHaveLength(1);
    expect(drained[0]).toMatchObject({ route: 'orders.shop', count: 40 });
    expect(drained[0]?.endpoints).toHaveLength(3);
    next = answer(many(2).slice(2));
    await vi.advanceTimersByTimeAsync(1_000);
    const single = lines.filter((l) => l.msg === 'endpoint removed (no longer in DNS); draining').slice(1);
    expect(single.map((l) => l.endpoint)).toEqual(['10.2.0.1:15006', '10.2.0.2:15006']);
  });

  it('fail/addresses no workload listens on are dropped and warned about once per distinct answer', async () => {
    const { set, lines } = await endpointSet(() =>
      answer(['10.0.0.1'], { ignored: ['169.254.169.254', '0.0.0.0'], overCap: 12 }),
    );
    await vi.advanceTimersByTimeAsync(5_000);
    expect(set.endpoints.map((e) => e.address)).toEqual(['10.0.0.1']);
    const ignored = lines.filter((l) => String(l.msg).startsWith('DNS answer holds addresses no workload listens on'));
    expect(ignored).toHaveLength(1);
    expect(ignored[0]).toMatchObject({ name: 'orders.shop.test', ignored: ['169.254.169.254', '0.0.0.0'], count: 2 });
    const capped = lines.filter((l) => String(l.msg).startsWith('DNS answer holds more addresses than'));
    expect(capped).toHaveLength(1);
    expect(capped[0]).toMatchObject({ cap: 256, ignoredCount: 12 });
  });
});
