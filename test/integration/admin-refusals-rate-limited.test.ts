// The admin listeners' own 404 and 405 refusals each wrote an `admin_request_rejected` warn line with no rate limit,
// while node's refusals on the same port were already rate-limited (10 s): the sidecar's admin port listens on
// 0.0.0.0:15020 by default, so any pod could fill the logs with a loop of GET /x (found by an outside review of
// src/telemetry/admin-refusals.ts). The lines now go through the same rate-limited log; every refusal is still
// counted in meshauth_requests_rejected_total, and every line not written in meshauth_log_lines_suppressed_total.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminServer } from '../../src/telemetry/admin-server.js';
import { Metrics } from '../../src/telemetry/index.js';
import { type LogLines, logLines } from '../helpers/log-lines.js';

const EACH = 150;
let metrics: Metrics;
let log: LogLines;
let admin: AdminServer;
let port: number;

beforeAll(async () => {
  metrics = new Metrics();
  log = logLines('sidecar', 'info');
  admin = new AdminServer({ host: '127.0.0.1', port: 0, metrics, logger: log.logger, readiness: () => true });
  port = await admin.listen();
});

afterAll(async () => {
  await admin?.close();
});

async function rejected(code: string): Promise<number> {
  const values = (await metrics.requestsRejected.get()).values;
  return values.find((v) => v.labels.direction === 'admin' && v.labels.code === code)?.value ?? 0;
}

async function suppressed(): Promise<number> {
  const values = (await metrics.logLinesSuppressed.get()).values;
  return values.find((v) => v.labels.event === 'admin_request_rejected')?.value ?? 0;
}

describe('admin listener: a flood of 404s and 405s', () => {
  it(`fail/${EACH} unknown paths and ${EACH} wrong methods: each counted, the log lines bounded`, async () => {
    const started = Date.now();
    for (let i = 0; i < EACH; i++) {
      const notFound = await fetch(`http://127.0.0.1:${port}/debug/${i}`);
      await notFound.arrayBuffer();
      expect(notFound.status).toBe(404);
      const wrongMethod = await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'DELETE' });
      await wrongMethod.arrayBuffer();
      expect(wrongMethod.status).toBe(405);
    }
    // One line per 10 s window at most (the first refusal of a window), plus one summary line per window.
    const windows = 1 + Math.ceil((Date.now() - started) / 10_000);
    expect(await rejected('MESHAUTH_ERR_ADMIN_NOT_FOUND')).toBe(EACH);
    expect(await rejected('MESHAUTH_ERR_ADMIN_METHOD_NOT_ALLOWED')).toBe(EACH);
    const lines = log.find({ event: 'admin_request_rejected' });
    const detailed = lines.filter((line) => line.suppressed === undefined);
    expect(lines.length).toBeLessThanOrEqual(2 * windows);
    expect(detailed.length).toBeGreaterThanOrEqual(1);
    expect(detailed[0]).toMatchObject({ level: 'warn', direction: 'admin', code: 'MESHAUTH_ERR_ADMIN_NOT_FOUND' });
    // Every refusal is either a written line or a counted suppressed one.
    expect(detailed.length + (await suppressed())).toBe(2 * EACH);
  });

  it('ok/the listener serves on after the flood', async () => {
    const reply = await fetch(`http://127.0.0.1:${port}/livez`);
    expect(reply.status).toBe(200);
    expect(await reply.text()).toBe('ok\n');
  });
});
