// Checklist L04, bounded: a storm of new mTLS connections to the inbound — 1,000 handshakes, 24 in flight at a
// time, as fast as that pool opens them; one in five is refused (a client certificate from another CA, or none) —
// while a keep-alive HTTP/2 caller's requests all succeed. Every accepted connection carries one request; every
// refused one is counted under its reason and reaches nothing. Afterwards the inbound's open connections, this
// process's file descriptors and active handles return to their baseline, and heap and RSS stay within generous
// bounds (no wall-clock asserts). The full size (500 new connections a second for 2 minutes) runs in the soak:
// `npm run soak -- --handshake-storm` (bench/soak/run.ts).
import { readdirSync } from 'node:fs';
import type { ClientHttp2Session } from 'node:http2';
import { type ConnectionOptions, createSecureContext, type SecureContext, connect as tlsConnect } from 'node:tls';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricValue, waitFor } from '../helpers/fault-harness.js';
import { h2GetStatus, mtlsH2Session } from '../helpers/raw-app.js';
import { startApp, startTestSidecar, type TestApp, type TestSidecar, testConfig } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

const HANDSHAKES = 1_000;
const WARM_UP = 100;
const IN_FLIGHT = 24;
/** Descriptors and handles may differ by this many from the baseline (app keep-alive pool churn). */
const FD_SLACK = 16;
const HEAP_SLACK = 32 * 1024 * 1024;
const RSS_SLACK = 128 * 1024 * 1024;

type Kind = 'ok' | 'untrusted' | 'no_cert';
/** One in ten from another CA (same trust domain name), one in ten with no certificate. */
const kindOf = (i: number): Kind => (i % 10 === 3 ? 'untrusted' : i % 10 === 7 ? 'no_cert' : 'ok');
const REASON: Record<Exclude<Kind, 'ok'>, string> = { untrusted: 'unknown_ca', no_cert: 'no_client_cert' };

const REQUEST = 'GET /storm HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n';

/** The garbage collector, for heap measurements that do not count what is merely uncollected yet. */
function collector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

const openFds = () => readdirSync('/proc/self/fd').length;
const activeHandles = () => process.getActiveResourcesInfo().filter((r) => r !== 'Timeout').length;

describe('handshake storm on the inbound (L04, bounded)', () => {
  let ca: TestCa;
  let app: TestApp;
  let sidecar: TestSidecar;
  let session: ClientHttp2Session;
  const contexts = {} as Record<Kind, SecureContext>;

  beforeAll(async () => {
    ca = await TestCa.create('example.org');
    const foreign = await TestCa.create('example.org'); // same trust domain name, a root the sidecar does not trust
    app = await startApp();
    sidecar = await startTestSidecar(ca, ca.idFor('/ns/shop/sa/b'), testConfig({ appPort: app.port }));
    const client = await ca.issue({ id: ca.idFor('/ns/shop/sa/storm') });
    const stranger = await foreign.issue({ id: ca.idFor('/ns/shop/sa/storm') });
    // One context per kind, built once as a sidecar builds its own: every connection is still a full handshake.
    contexts.ok = createSecureContext({ cert: client.chainPem, key: client.keyPem, ca: ca.bundlePem });
    contexts.untrusted = createSecureContext({ cert: stranger.chainPem, key: stranger.keyPem, ca: ca.bundlePem });
    contexts.no_cert = createSecureContext({ ca: ca.bundlePem });
    const steady = await ca.issue({ id: ca.idFor('/ns/shop/sa/steady') });
    session = await mtlsH2Session(sidecar.sidecar.inboundPort, steady, ca.bundlePem);
  });
  afterAll(async () => {
    session?.destroy();
    await sidecar?.sidecar.close(0);
    await app?.close();
  });

  /** One new connection of `kind` that sends one request; resolves with what came back once it closed. */
  const connectOnce = (kind: Kind): Promise<string> =>
    new Promise((resolve) => {
      const options: ConnectionOptions = {
        host: '127.0.0.1',
        port: sidecar.sidecar.inboundPort,
        secureContext: contexts[kind],
        checkServerIdentity: () => undefined, // SVIDs carry no DNS name; the chain is verified against the bundle
        ALPNProtocols: ['http/1.1'],
      };
      let reply = '';
      const socket = tlsConnect(options, () => socket.write(REQUEST));
      socket.on('data', (chunk: Buffer) => {
        reply += chunk.toString('latin1');
      });
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(reply));
      socket.setTimeout(15_000, () => socket.destroy()); // a bound, not an expectation
    });

  /** `total` connections, `IN_FLIGHT` at a time; the replies by kind. */
  async function storm(total: number): Promise<Record<Kind, string[]>> {
    const replies: Record<Kind, string[]> = { ok: [], untrusted: [], no_cert: [] };
    let next = 0;
    const worker = async () => {
      while (next < total) {
        const kind = kindOf(next++);
        replies[kind].push(await connectOnce(kind));
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    return replies;
  }

  const failures = (reason: string) =>
    metricValue(sidecar, 'meshauth_tls_handshake_failures_total', `reason="${reason}"`);
  const openConnections = () => metricValue(sidecar, 'meshauth_connections_open', 'direction="inbound"');
  const rejected = async () => {
    const { values } = await sidecar.metrics.connectionsRejected.get();
    return values.reduce((sum, v) => sum + v.value, 0);
  };

  it('ok/1,000 new mTLS connections, one in five refused and counted by reason; the keep-alive caller never fails; resources return to baseline', async () => {
    const gc = collector();
    expect(await h2GetStatus(session, { ':path': '/steady' })).toBe(200);
    // Warm-up: the same mix, so that pools, caches and lazy modules reach their steady size before the baseline.
    await storm(WARM_UP);
    await waitFor('the warm-up connections closed', async () => (await openConnections()) === 1 || undefined);
    gc();
    const baseline = {
      fds: openFds(),
      handles: activeHandles(),
      heap: process.memoryUsage().heapUsed,
      rss: process.memoryUsage().rss,
    };
    const before = {
      untrusted: await failures(REASON.untrusted),
      no_cert: await failures(REASON.no_cert),
      rejected: await rejected(),
      seen: app.seen.length,
    };

    // The keep-alive caller: one HTTP/2 connection, one request after another for the whole storm.
    let stop = false;
    const steady: number[] = [];
    const caller = (async () => {
      while (!stop) steady.push(await h2GetStatus(session, { ':path': '/steady' }));
    })();
    let replies: Record<Kind, string[]>;
    const cpu = process.cpuUsage();
    try {
      replies = await storm(HANDSHAKES);
    } finally {
      stop = true;
      await caller;
    }

    // Every accepted connection got its answer; no refused one got an HTTP byte or reached the app.
    expect(replies.ok).toHaveLength(HANDSHAKES * 0.8);
    expect(replies.ok.filter((r) => !r.startsWith('HTTP/1.1 200 '))).toEqual([]);
    expect(replies.untrusted).toHaveLength(HANDSHAKES / 10);
    expect(replies.no_cert).toHaveLength(HANDSHAKES / 10);
    expect([...replies.untrusted, ...replies.no_cert].filter((r) => r !== '')).toEqual([]);
    const stormSeen = app.seen.slice(before.seen).filter((s) => s.url === '/storm');
    expect(stormSeen).toHaveLength(replies.ok.length);
    // Each refusal counted once under its reason; nothing refused by a connection limit.
    expect(await failures(REASON.untrusted)).toBe(before.untrusted + replies.untrusted.length);
    expect(await failures(REASON.no_cert)).toBe(before.no_cert + replies.no_cert.length);
    expect(await rejected()).toBe(before.rejected);
    // The keep-alive caller never failed (one connection throughout: a reset would show as status 0).
    expect(steady.length).toBeGreaterThan(0);
    expect(steady.filter((s) => s !== 200)).toEqual([]);
    expect(session.destroyed).toBe(false);

    // Back to the baseline: the inbound holds only the keep-alive connection; descriptors and handles are released.
    await waitFor('the storm connections closed', async () => (await openConnections()) === 1 || undefined);
    await waitFor('descriptors back to the baseline', () => openFds() <= baseline.fds + FD_SLACK || undefined);
    await waitFor('handles back to the baseline', () => activeHandles() <= baseline.handles + FD_SLACK || undefined);
    gc();
    const after = { fds: openFds(), handles: activeHandles(), ...process.memoryUsage() };
    console.log(
      JSON.stringify({
        steadyRequests: steady.length,
        stormCpuS: (({ user, system }) => (user + system) / 1e6)(process.cpuUsage(cpu)),
        fds: [baseline.fds, after.fds],
        handles: [baseline.handles, after.handles],
        heapMiB: [baseline.heap, after.heapUsed].map((b) => Math.round(b / 1024 / 1024)),
        rssMiB: [baseline.rss, after.rss].map((b) => Math.round(b / 1024 / 1024)),
      }),
    );
    expect(after.heapUsed).toBeLessThan(baseline.heap + HEAP_SLACK);
    expect(after.rss).toBeLessThan(baseline.rss + RSS_SLACK);
  }, 60_000);
});
