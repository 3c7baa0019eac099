// A flood of refused requests on the sidecar's data listeners wrote one `request rejected` warn line per request:
// an mTLS peer sending a forged passport on the inbound, an outside client sending a token of an unknown issuer on
// the external listener (no client certificate needed), an app asking the outbound for a host with no route — each
// in a loop filled the log at the rate of the loop (found by an outside review: 2,000 refusals on the external and
// the outbound listener wrote 2,000 lines each), while the admin listeners' refusals were already rate-limited.
// Every refusal is still counted in meshauth_requests_rejected_total; the lines are now the first ten of each code
// per 10 s window, the others counted in meshauth_log_lines_suppressed_total and summed in one summary line naming
// the code. A policy deny keeps its audit line per request (every deny is one audit line).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type Agent as HttpAgent, request as httpRequest, Agent as KeepAlive } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endUserToken, signingKey } from '../helpers/end-user-keys.js';
import { EXTERNAL_TD, type ExternalSidecar, startExternalSidecar } from '../helpers/external-sidecar.js';
import { logLines } from '../helpers/log-lines.js';
import { startApp, startTestSidecar, testConfig } from '../helpers/sidecar-harness.js';
import type { TestSvid } from '../helpers/test-ca.js';

// Enough to show a line per request (the review measured 2,000); sequential, so that a loaded CI machine finishes.
const FLOOD = 300;
const FLOOD_TIMEOUT_MS = 90_000;
const WINDOW_MS = 10_000;
/** Lines of one code written in full per window. */
const BURST = 10;
const log = logLines('b', 'info');
let external: ExternalSidecar;
let client: TestSvid;
let strangerToken: string;
const closers: Array<() => Promise<void>> = [];

beforeAll(async () => {
  external = await startExternalSidecar({ id: `spiffe://${EXTERNAL_TD}/ns/a/sa/b`, logger: log.logger });
  closers.push(() => external.close());
  strangerToken = await endUserToken(await signingKey('k9'), 'https://stranger.test', 'api');
  client = await external.ca.issue({ id: `spiffe://${EXTERNAL_TD}/ns/a/sa/client` });
});

afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
});

async function rejected(direction: string, code: string): Promise<number> {
  const values = (await external.sc.metrics.requestsRejected.get()).values;
  return values.find((v) => v.labels.direction === direction && v.labels.code === code)?.value ?? 0;
}

async function suppressed(metrics = external.sc.metrics): Promise<number> {
  const values = (await metrics.logLinesSuppressed.get()).values;
  return values.filter((v) => v.labels.event === 'request_rejected').reduce((sum, v) => sum + v.value, 0);
}

function tlsAgent(svid?: TestSvid): Agent {
  const agent = new Agent({
    connections: 1,
    connect: {
      ca: external.ca.rootPem,
      checkServerIdentity: () => undefined,
      ...(svid === undefined ? {} : { cert: svid.chainPem, key: svid.keyPem }),
    },
  });
  closers.push(() => agent.close());
  return agent;
}

/** An app's request through the outbound (proxy form) on a keep-alive agent; resolves with the status. */
function viaOutbound(agent: HttpAgent, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port: external.sc.sidecar.outboundPort, path: `http://${host}/x`, headers: { host }, agent },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Runs `send` FLOOD times, one after the other; every answer must be `status`. */
async function flood(send: () => Promise<number>, status: number): Promise<void> {
  for (let i = 0; i < FLOOD; i++) expect(await send()).toBe(status);
}

/** The flood's lines for `direction`/`code`: bounded, the first one in full, each refusal a line or suppressed. */
async function expectBounded(direction: string, code: string, started: number, suppressedBefore: number) {
  expect(await rejected(direction, code)).toBe(FLOOD);
  const windows = 1 + Math.ceil((Date.now() - started) / WINDOW_MS);
  const lines = log.find({ direction, code });
  const detailed = lines.filter((line) => line.suppressed === undefined);
  expect(detailed.length).toBeGreaterThanOrEqual(1);
  expect(detailed.length).toBeLessThanOrEqual(BURST * windows);
  expect(detailed[0]).toMatchObject({ level: 'warn', direction, code });
  expect(detailed.length + (await suppressed()) - suppressedBefore).toBe(FLOOD);
  return detailed[0] as Record<string, unknown>;
}

describe(`a flood of ${FLOOD} refused requests on each data listener: each counted, the log lines bounded`, () => {
  it(
    'fail/inbound: an mTLS peer sending a forged passport → 401 each, the first line names the peer',
    async () => {
      const agent = tlsAgent(client);
      const url = `https://127.0.0.1:${external.sc.sidecar.inboundPort}/orders`;
      const before = await suppressed();
      const started = Date.now();
      await flood(async () => {
        const reply = await request(url, { dispatcher: agent, headers: { 'x-meshauth-passport': 'e30.e30.AAAA' } });
        await reply.body.dump();
        return reply.statusCode;
      }, 401);
      const first = await expectBounded('inbound', 'MESHAUTH_ERR_PASSPORT_INVALID', started, before);
      expect(first.peer).toBe(`spiffe://${EXTERNAL_TD}/ns/a/sa/client`);
    },
    FLOOD_TIMEOUT_MS,
  );

  it(
    'fail/external: an outside client sending a token of an unknown issuer → 401 each',
    async () => {
      const agent = tlsAgent();
      const url = `https://127.0.0.1:${external.sc.sidecar.externalPort}/orders`;
      const before = await suppressed();
      const started = Date.now();
      await flood(async () => {
        const reply = await request(url, { dispatcher: agent, headers: { authorization: `Bearer ${strangerToken}` } });
        await reply.body.dump();
        return reply.statusCode;
      }, 401);
      const first = await expectBounded('external', 'MESHAUTH_ERR_TOKEN_INVALID', started, before);
      expect(first).toMatchObject({ reason: 'issuer', issuer: 'https://stranger.test' });
    },
    FLOOD_TIMEOUT_MS,
  );

  it(
    'fail/outbound: an app asking for a host with no route → 502 each',
    async () => {
      const agent = new KeepAlive({ keepAlive: true, maxSockets: 1 });
      closers.push(async () => agent.destroy());
      const before = await suppressed();
      const started = Date.now();
      await flood(() => viaOutbound(agent, 'nowhere.mesh'), 502);
      await expectBounded('outbound', 'MESHAUTH_ERR_ROUTE_NOT_FOUND', started, before);
    },
    FLOOD_TIMEOUT_MS,
  );

  it('ok/another refusal during a flood still gets its own first line', async () => {
    const from = log.lines.length;
    const agent = tlsAgent(client);
    const reply = await request(`https://127.0.0.1:${external.sc.sidecar.inboundPort}/orders`, {
      dispatcher: agent,
      headers: ['authorization', 'Bearer a.b.c', 'authorization', 'Bearer d.e.f'],
    });
    await reply.body.dump();
    expect(reply.statusCode).toBe(400);
    expect(log.lines.slice(from)).toMatchObject([
      { level: 'warn', direction: 'inbound', code: 'MESHAUTH_ERR_TOKEN_REQUEST_MALFORMED' },
    ]);
  });

  it('ok/the listeners serve on after the floods', async () => {
    const agent = tlsAgent(client);
    const reply = await request(`https://127.0.0.1:${external.sc.sidecar.inboundPort}/orders`, { dispatcher: agent });
    await reply.body.dump();
    expect(reply.statusCode).toBe(200);
  });
});

describe(`a flood of ${FLOOD} policy denies on the inbound`, () => {
  it(
    'fail/every deny keeps its audit line; the rejection lines beside them are bounded',
    async () => {
      const denyLog = logLines('b', 'info');
      const dir = mkdtempSync(join(tmpdir(), 'meshauth-deny-flood-'));
      closers.push(async () => rmSync(dir, { recursive: true, force: true }));
      const policyFile = join(dir, 'policy.yaml');
      const others = `spiffe://${EXTERNAL_TD}/ns/a/sa/someone-else`;
      const rules = ['  - name: others-only', '    action: allow', `    from: { ids: ["${others}"] }`];
      writeFileSync(policyFile, ['apiVersion: meshauth.dev/v1', 'kind: Policy', 'rules:', ...rules, ''].join('\n'));
      const app = await startApp();
      closers.push(() => app.close());
      const config = testConfig({ appPort: app.port });
      const b = await startTestSidecar(
        external.ca,
        `spiffe://${EXTERNAL_TD}/ns/a/sa/denier`,
        { ...config, inbound: { ...config.inbound, policy: policyFile } },
        { logger: denyLog.logger },
      );
      closers.push(() => b.sidecar.close(0));
      const agent = tlsAgent(client);
      const url = `https://127.0.0.1:${b.sidecar.inboundPort}/orders`;
      const started = Date.now();
      await flood(async () => {
        const reply = await request(url, { dispatcher: agent });
        await reply.body.dump();
        return reply.statusCode;
      }, 403);
      const values = (await b.metrics.requestsRejected.get()).values;
      expect(values.find((v) => v.labels.code === 'MESHAUTH_ERR_FORBIDDEN')?.value).toBe(FLOOD);
      // The audit trail: one line per deny, naming the peer and the rule.
      const audit = denyLog.find({ event: 'authz_deny' });
      expect(audit).toHaveLength(FLOOD);
      expect(audit[0]).toMatchObject({ peerId: client.svid.id.toString(), path: '/orders', rule: 'default-deny' });
      const windows = 1 + Math.ceil((Date.now() - started) / WINDOW_MS);
      const rejections = denyLog
        .find({ direction: 'inbound', code: 'MESHAUTH_ERR_FORBIDDEN' })
        .filter((line) => line.suppressed === undefined);
      expect(rejections.length).toBeGreaterThanOrEqual(1);
      expect(rejections.length).toBeLessThanOrEqual(BURST * windows);
      expect(rejections.length + (await suppressed(b.metrics))).toBe(FLOOD);
    },
    FLOOD_TIMEOUT_MS,
  );
});
