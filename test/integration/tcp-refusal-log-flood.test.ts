// A flood of refused TCP tunnels wrote one `tcp connection refused` warn line per connection: an mTLS peer
// reconnecting in a loop past its tunnel limit, or an app reconnecting to an outbound TCP listener while the sidecar
// has no SVID yet, wrote a line per attempt (found by an outside review measuring refusal floods on each data
// listener). Every refusal is still counted in meshauth_tcp_connections_total{result}; the lines are now the first
// ten of each result per 10 s window, the others counted in meshauth_log_lines_suppressed_total and summed in one
// summary line naming the result. A policy deny stays one audit line per connection (every deny is one audit line).
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Metrics } from '../../src/telemetry/index.js';
import { type LogLines, logLines } from '../helpers/log-lines.js';
import { echo, startTcpApp, startTcpTunnelPair, type TcpApp, type TcpTunnelPair } from '../helpers/tcp-tunnel-pair.js';
import { TestCa } from '../helpers/test-ca.js';

const FLOOD = 200;
const FLOOD_TIMEOUT_MS = 60_000;
const WINDOW_MS = 10_000;
/** Lines of one result written in full per window. */
const BURST = 10;
let ca: TestCa;
let app: TcpApp;
const closers: Array<() => Promise<void>> = [];

beforeAll(async () => {
  ca = await TestCa.create();
  app = await startTcpApp(echo);
  closers.push(() => app.close());
});

afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
});

async function refusals(metrics: Metrics, result: string): Promise<number> {
  const values = (await metrics.tcpConnections.get()).values;
  return values.filter((v) => v.labels.result === result).reduce((sum, v) => sum + v.value, 0);
}

async function suppressed(metrics: Metrics): Promise<number> {
  const values = (await metrics.logLinesSuppressed.get()).values;
  return values.find((v) => v.labels.event === 'tcp_connection_refused')?.value ?? 0;
}

/** Connects FLOOD times in a row to `port`, each until the sidecar closes (resets) the connection. */
async function flood(port: number): Promise<void> {
  for (let i = 0; i < FLOOD; i++) {
    await new Promise<void>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.on('error', () => undefined); // the refusal is a reset, possibly before 'connect'
      socket.on('close', () => resolve());
    });
  }
}

async function expectBounded(log: LogLines, metrics: Metrics, direction: string, result: string, started: number) {
  expect(await refusals(metrics, result)).toBe(FLOOD);
  const windows = 1 + Math.ceil((Date.now() - started) / WINDOW_MS);
  const detailed = log.find({ direction, result }).filter((line) => line.suppressed === undefined);
  expect(detailed.length).toBeGreaterThanOrEqual(1);
  expect(detailed.length).toBeLessThanOrEqual(BURST * windows);
  expect(detailed[0]).toMatchObject({ level: 'warn', direction, protocol: 'tcp', result });
  expect(detailed.length + (await suppressed(metrics))).toBe(FLOOD);
}

describe(`a flood of ${FLOOD} refused TCP tunnels: each counted, the log lines bounded`, () => {
  it(
    'fail/inbound: a peer past its tunnel limit, reconnecting in a loop',
    async () => {
      const log = logLines('tcp', 'info');
      const pair: TcpTunnelPair = await startTcpTunnelPair(ca, {
        appPort: app.port,
        limits: { maxConnectionsPerPeer: 0 },
        logger: log.logger,
      });
      closers.push(() => pair.close());
      const started = Date.now();
      await flood(pair.port);
      await expectBounded(log, pair.serverMetrics, 'inbound', 'limit', started);
    },
    FLOOD_TIMEOUT_MS,
  );

  it(
    'fail/outbound: an app reconnecting while the sidecar has no SVID',
    async () => {
      const log = logLines('tcp', 'info');
      const pair: TcpTunnelPair = await startTcpTunnelPair(ca, {
        appPort: app.port,
        clientWithoutSvid: true,
        logger: log.logger,
      });
      closers.push(() => pair.close());
      const started = Date.now();
      await flood(pair.port);
      await expectBounded(log, pair.clientMetrics, 'outbound', 'not_ready', started);
    },
    FLOOD_TIMEOUT_MS,
  );
});
