// A peer whose chain OpenSSL accepted but whose certificate breaks a SPIFFE rule (here: a workload of a federated
// trust domain whose root is in the bundle, calling a sidecar of another trust domain) is dropped after the
// handshake with one `peer certificate refused` warn line per connection, not rate-limited: reconnecting in a loop
// wrote a line per attempt (found by an outside review measuring refusal floods on the data listeners), while the
// handshake failures OpenSSL itself refuses were already rate-limited. Every refusal is still counted in
// meshauth_tls_handshake_failures_total{reason}; the lines are now the first ten of each reason per 10 s window,
// the others counted in meshauth_log_lines_suppressed_total and summed in one summary line naming the reason.
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TrustBundle } from '../../src/pki/index.js';
import { type LogLines, logLines } from '../helpers/log-lines.js';
import { startApp, startTestSidecar, type TestApp, type TestSidecar, testConfig } from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';

const FLOOD = 200;
const FLOOD_TIMEOUT_MS = 60_000;
const WINDOW_MS = 10_000;
/** Lines of one reason written in full per window. */
const BURST = 10;
let ca: TestCa;
let otherTd: TestCa;
let app: TestApp;
let sidecar: TestSidecar;
let stranger: TestSvid;
let log: LogLines;

beforeAll(async () => {
  ca = await TestCa.create('example.org');
  otherTd = await TestCa.create('other.org'); // a trusted root (federation-style), not our trust domain
  app = await startApp();
  log = logLines('sidecar', 'info');
  sidecar = await startTestSidecar(ca, ca.idFor('/ns/shop/sa/server'), testConfig({ appPort: app.port }), {
    bundle: new TrustBundle(ca.trustDomain, [ca.root, otherTd.root]),
    logger: log.logger,
  });
  stranger = await otherTd.issue({ id: otherTd.idFor('/ns/shop/sa/client') });
});

afterAll(async () => {
  await sidecar?.sidecar.close(0);
  await app?.close();
});

async function failures(reason: string): Promise<number> {
  const values = (await sidecar.metrics.tlsHandshakeFailures.get()).values;
  return values.find((v) => v.labels.direction === 'inbound' && v.labels.reason === reason)?.value ?? 0;
}

async function suppressed(): Promise<number> {
  const values = (await sidecar.metrics.logLinesSuppressed.get()).values;
  return values.find((v) => v.labels.event === 'peer_certificate_refused')?.value ?? 0;
}

/** One mTLS connection with `svid` that the sidecar drops after the handshake; resolves when it closed. */
function refusedConnection(svid: TestSvid): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({
      host: '127.0.0.1',
      port: sidecar.sidecar.inboundPort,
      cert: svid.chainPem,
      key: svid.keyPem,
      ca: ca.rootPem,
      ALPNProtocols: ['http/1.1'],
      checkServerIdentity: () => undefined,
    });
    socket.on('error', () => undefined); // the drop may come as a reset
    socket.on('close', () => resolve());
  });
}

describe(`a peer of a federated trust domain reconnecting ${FLOOD} times: each counted, the log lines bounded`, () => {
  it(
    'fail/trust_domain refusals in a loop',
    async () => {
      const started = Date.now();
      for (let i = 0; i < FLOOD; i++) await refusedConnection(stranger);
      await expect.poll(() => failures('trust_domain'), { timeout: 5_000, interval: 20 }).toBe(FLOOD);
      const windows = 1 + Math.ceil((Date.now() - started) / WINDOW_MS);
      const detailed = log
        .find({ direction: 'inbound', reason: 'trust_domain' })
        .filter((line) => line.suppressed === undefined);
      expect(detailed.length).toBeGreaterThanOrEqual(1);
      expect(detailed.length).toBeLessThanOrEqual(BURST * windows);
      expect(detailed[0]).toMatchObject({ level: 'warn', remote: '127.0.0.1', msg: 'peer certificate refused' });
      expect(detailed.length + (await suppressed())).toBe(FLOOD);
    },
    FLOOD_TIMEOUT_MS,
  );

  it('ok/a peer of our trust domain is served after the flood', async () => {
    const { Agent, request } = await import('undici');
    const client = await ca.issue({ id: ca.idFor('/ns/shop/sa/client') });
    const agent = new Agent({
      connect: { cert: client.chainPem, key: client.keyPem, ca: ca.rootPem, checkServerIdentity: () => undefined },
    });
    try {
      const reply = await request(`https://127.0.0.1:${sidecar.sidecar.inboundPort}/hello`, { dispatcher: agent });
      await reply.body.dump();
      expect(reply.statusCode).toBe(200);
    } finally {
      await agent.close();
    }
  });
});
