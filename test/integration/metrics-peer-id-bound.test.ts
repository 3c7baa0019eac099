// 200 workloads of the trust domain, each with its own SVID, call one sidecar's inbound once: meshauth_requests_total
// keeps inbound.limits.maxPeerIdLabels peer_id values (20 here) and counts the rest under `other`, so the sidecar's
// series and its scrape stop growing with the number of peers (before, one series per peer: 200 here). Ten times the
// bound, not thousands of peers: the bound is configured small instead, as each peer costs an SVID and a full mTLS
// handshake on the two shared cores.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logLines } from '../helpers/log-lines.js';
import { rawTlsExchange } from '../helpers/raw-tls.js';
import { startApp, startTestSidecar, type TestApp, type TestSidecar, testConfig } from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';

const PEERS = 200;
const BOUND = 20;
/** Connections at a time: the peers' handshakes share two cores with the sidecar. */
const PARALLEL = 8;

describe('inbound: peer_id values bounded with many distinct peers', () => {
  let ca: TestCa;
  let app: TestApp;
  let sidecar: TestSidecar;
  const log = logLines('sidecar', 'warn');

  beforeAll(async () => {
    ca = await TestCa.create();
    app = await startApp();
    const base = testConfig({ appPort: app.port });
    const config = {
      ...base,
      inbound: { ...base.inbound, limits: { ...base.inbound.limits, maxPeerIdLabels: BOUND } },
    };
    sidecar = await startTestSidecar(ca, ca.idFor('/ns/shop/sa/server'), config, { logger: log.logger });
  }, 30_000);

  afterAll(async () => {
    await sidecar?.sidecar.close(0);
    await app?.close();
  });

  it(`ok/${PEERS} peers with their own SVIDs: ${BOUND} peer_id values and "other", every request counted`, async () => {
    const svids: TestSvid[] = await Promise.all(
      Array.from({ length: PEERS }, (_, n) => ca.issue({ id: ca.idFor(`/ns/load/sa/w${n}`) })),
    );
    const statuses: string[] = [];
    let next = 0;
    const worker = async () => {
      for (let n = next++; n < PEERS; n = next++) {
        const reply = await rawTlsExchange(
          sidecar.sidecar.inboundPort,
          svids[n] as TestSvid,
          ca.bundlePem,
          'GET / HTTP/1.1\r\nhost: server\r\nconnection: close\r\n\r\n',
        );
        statuses.push(reply.slice(9, 12));
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    expect(statuses.filter((s) => s !== '200')).toEqual([]);
    expect(app.seen).toHaveLength(PEERS);

    const values = (await sidecar.metrics.requests.get()).values.filter((v) => v.labels.direction === 'inbound');
    const byPeer = new Map(values.map((v) => [String(v.labels.peer_id), v.value]));
    expect(byPeer.size).toBe(BOUND + 1);
    expect(byPeer.get('other')).toBe(PEERS - BOUND);
    expect([...byPeer.values()].reduce((a, b) => a + b, 0)).toBe(PEERS);
    const exposition = await sidecar.metrics.exposition();
    expect(exposition.match(/^meshauth_requests_total\{/gm)).toHaveLength(BOUND + 1);
    expect(log.find({ event: 'peer_id_labels_full' })).toHaveLength(1);
  }, 120_000);
});
