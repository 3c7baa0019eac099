// A flood of refused requests on the CA's API wrote one `ca_request_rejected` warn line per request: anyone who
// reaches the CA (no credential needed) could loop an unknown path, a refused method, a made-up join token or a
// broken CSR and write a line per request (found by an outside review measuring such floods), while its comment
// promised "at most once per interval" and the CA's overload and handshake refusals were already rate-limited.
// Every refusal is still counted in meshauth_ca_requests_rejected_total{reason}; the lines are now the first ten of
// each reason per 10 s window, the others counted in meshauth_log_lines_suppressed_total and summed in one summary
// line naming the reason.
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCsrPem, generateKeyPair } from '../../src/pki/index.js';
import { Metrics } from '../../src/telemetry/index.js';
import { startCaInTempDir, type TestCaServer } from '../helpers/ca-dir.js';
import { caRejections } from '../helpers/ca-metrics.js';
import { type LogLines, logLines } from '../helpers/log-lines.js';

// Each request is a TLS connection of its own (the CA answers one request per connection): enough to show a line
// per request, few enough for a loaded CI machine.
const FLOOD = 200;
const FLOOD_TIMEOUT_MS = 60_000;
const WINDOW_MS = 10_000;
/** Lines of one reason written in full per window. */
const BURST = 10;
let ca: TestCaServer;
let metrics: Metrics;
let log: LogLines;
let agent: Agent;
let csr: string;

beforeAll(async () => {
  metrics = new Metrics();
  log = logLines('ca', 'info');
  ca = await startCaInTempDir({ svidTtlMs: 600_000, logger: log.logger, metrics });
  agent = new Agent({ connect: { ca: ca.bundlePem } });
  csr = await createCsrPem(await generateKeyPair());
});

afterAll(async () => {
  await agent?.close();
  await ca?.close();
});

async function suppressed(): Promise<number> {
  const values = (await metrics.logLinesSuppressed.get()).values;
  return values.find((v) => v.labels.event === 'ca_request_rejected')?.value ?? 0;
}

async function send(path: string, method: string, body?: string): Promise<number> {
  const reply = await request(`${ca.server.url}${path}`, {
    method: method as 'GET',
    dispatcher: agent,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body }),
  });
  await reply.body.dump();
  return reply.statusCode;
}

describe(`a flood of ${FLOOD} refused requests of one kind on the CA: each counted, the log lines bounded`, () => {
  it.each([
    ['fail/unknown path', 'not_found', 404, () => send('/v1/nothing', 'GET')],
    ['fail/refused method', 'method_not_allowed', 405, () => send('/v1/bundle', 'DELETE')],
    [
      'fail/made-up join token',
      'token_unknown',
      401,
      () => send('/v1/svid', 'POST', JSON.stringify({ csr, token: 'A'.repeat(43) })),
    ],
    ['fail/broken CSR', 'csr_pem', 400, () => send('/v1/svid', 'POST', JSON.stringify({ csr: 'x', token: 't' }))],
  ] as const)(
    '%s',
    async (_name, reason, status, attempt) => {
      const before = await caRejections(metrics, reason);
      const suppressedBefore = await suppressed();
      const started = Date.now();
      for (let i = 0; i < FLOOD; i++) expect(await attempt()).toBe(status);
      expect(await caRejections(metrics, reason)).toBe(before + FLOOD);
      const windows = 1 + Math.ceil((Date.now() - started) / WINDOW_MS);
      const detailed = log.find({ event: 'ca_request_rejected', reason }).filter((l) => l.suppressed === undefined);
      expect(detailed.length).toBeGreaterThanOrEqual(1);
      expect(detailed.length).toBeLessThanOrEqual(BURST * windows);
      expect(detailed[0]).toMatchObject({ level: 'warn', reason, remote: '127.0.0.1' });
      expect(detailed.length + (await suppressed()) - suppressedBefore).toBe(FLOOD);
    },
    FLOOD_TIMEOUT_MS,
  );

  it('ok/the CA issues after the floods', async () => {
    const { createJoinToken } = await import('../../src/ca/index.js');
    const token = await createJoinToken({ dir: ca.dir, id: 'spiffe://example.org/ns/shop/sa/web', ttlMs: 60_000 });
    expect(await send('/v1/svid', 'POST', JSON.stringify({ csr, token }))).toBe(200);
  });
});
