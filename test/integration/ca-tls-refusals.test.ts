// TLS handshakes the CA refuses are counted and logged, found by an outside test of `ca serve`: plain HTTP on the TLS
// port, a TLS 1.1 client, a client offering only h2 (the CA speaks HTTP/1.1) and a handshake left unfinished got
// their TLS alert or a closed connection, but no metric moved and only a debug line was written. Now each counts in
// meshauth_tls_handshake_failures_total{direction="ca",reason} and writes a `ca_tls_handshake_failed` line at most
// once per interval (anyone can fail handshakes at will), never as a malformed request.
import { connect } from 'node:net';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Metrics } from '../../src/telemetry/index.js';
import { startCaInTempDir, type TestCaServer } from '../helpers/ca-dir.js';
import { type LogLines, logLines } from '../helpers/log-lines.js';
import { waitFor } from '../helpers/wait.js';

let ca: TestCaServer;
let metrics: Metrics;
let log: LogLines;

beforeAll(async () => {
  metrics = new Metrics();
  log = logLines();
  ca = await startCaInTempDir({ svidTtlMs: 10 * 60_000, logger: log.logger, metrics, workers: 0 });
});
afterAll(async () => {
  await ca?.close();
});

async function handshakeFailures(reason: string): Promise<number> {
  const { values } = await metrics.tlsHandshakeFailures.get();
  return values.find((v) => v.labels.direction === 'ca' && v.labels.reason === reason)?.value ?? 0;
}

async function requestsRejected(): Promise<number> {
  return (await metrics.caRequestsRejected.get()).values.reduce((sum, v) => sum + v.value, 0);
}

/** Raw bytes on the TLS port; resolves when the CA closes the connection. */
function raw(bytes: string | Buffer): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(ca.server.port, '127.0.0.1', () => socket.write(bytes));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve());
    socket.setTimeout(20_000, () => socket.destroy());
  });
}

/** A real TLS client; resolves with the error code of its failed handshake. */
function tlsClient(options: ConnectionOptions): Promise<string> {
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: ca.server.port,
      ca: [ca.bundlePem],
      servername: 'localhost',
      ...options,
    });
    socket.once('secureConnect', () => {
      resolve('connected');
      socket.destroy();
    });
    socket.once('error', (error: Error & { code?: string }) => resolve(error.code ?? error.message));
    socket.setTimeout(5_000, () => socket.destroy(new Error('timeout')));
  });
}

/** The `ca_tls_handshake_failed` lines of refusals (not the summaries of suppressed ones). */
const failedLines = (from: number) =>
  log.lines.slice(from).filter((line) => line.event === 'ca_tls_handshake_failed' && line.suppressed === undefined);

describe('ca serve: refused TLS handshakes are counted and logged', () => {
  it('fail/plain HTTP, TLS 1.1, h2 only and an unfinished handshake: counted by reason, one log line', async () => {
    const seen = log.lines.length;
    const rejectedBefore = await requestsRejected();
    const before = {
      notTls: await handshakeFailures('not_tls'),
      version: await handshakeFailures('protocol_version'),
      alpn: await handshakeFailures('no_application_protocol'),
      timeout: await handshakeFailures('handshake_timeout'),
    };
    // One byte of a TLS record and nothing more: the handshake times out (10 s) while the others run.
    const unfinished = raw(Buffer.from([0x16]));
    await raw(`GET /v1/bundle HTTP/1.1\r\nHost: localhost:${ca.server.port}\r\n\r\n`);
    expect(await tlsClient({ minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' })).toMatch(
      /PROTOCOL_VERSION/,
    );
    expect(await tlsClient({ ALPNProtocols: ['h2'] })).toMatch(/NO_APPLICATION_PROTOCOL/);
    // Three within one interval: the first is written, the others counted as suppressed. (The unfinished one ends
    // as the 10 s interval does, on either side of it.)
    const lines = failedLines(seen);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'warn', reason: 'not_tls' });
    await unfinished;
    await waitFor(
      'the unfinished handshake counted',
      async () => (await handshakeFailures('handshake_timeout')) > before.timeout,
      5_000,
    );
    expect(await handshakeFailures('not_tls')).toBe(before.notTls + 1);
    expect(await handshakeFailures('protocol_version')).toBe(before.version + 1);
    expect(await handshakeFailures('no_application_protocol')).toBe(before.alpn + 1);
    expect(await handshakeFailures('handshake_timeout')).toBe(before.timeout + 1);
    // A refused handshake is not a refused request (node:https reports it as a client error too).
    expect(await requestsRejected()).toBe(rejectedBefore);
    expect(log.lines.slice(seen).filter((line) => line.event === 'ca_request_rejected')).toHaveLength(0);
  }, 30_000);

  it('fail/more than one TLS record before the handshake: closed by the door, counted as policy, logged', async () => {
    const before = await handshakeFailures('policy');
    const suppressed = async () =>
      (await metrics.logLinesSuppressed.get()).values.find((v) => v.labels.event === 'ca_tls_handshake_failed')
        ?.value ?? 0;
    const seen = log.lines.length;
    const suppressedBefore = await suppressed();
    await raw(Buffer.alloc(20_000, 0x16));
    expect(await handshakeFailures('policy')).toBe(before + 1);
    // Its own line, or (within the interval of an earlier one) a suppressed count: never nothing.
    expect(failedLines(seen).length + (await suppressed()) - suppressedBefore).toBe(1);
  });

  it('ok/a TLS 1.3 client still gets through', async () => {
    expect(await tlsClient({})).toBe('connected');
  });
});
