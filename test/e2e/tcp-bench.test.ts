// The TCP part of the benchmark measures what it claims: the stunnel and meshauth tunnel pairs really carry bytes
// over mTLS with the bench SVIDs and refuse a client certificate from another CA; the table shows the ratio to
// stunnel and keeps unavailable rows. Pairs are skipped when stunnel is not installed.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { type AddressInfo, connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BenchPki, createBenchPki } from '../../bench/bench-pki.js';
import { findBinary } from '../../bench/peers.js';
import { tcpTable } from '../../bench/report.js';
import { startMeshauthTcpPair, startStunnelPair, type TunnelPair } from '../../bench/tcp.js';

describe('tcpTable', () => {
  it('ok/ratio to stunnel; unavailable rows keep their reason', () => {
    const table = tcpTable({
      ok: true,
      result: {
        name: 'tcp bulk transfer',
        mib: 64,
        tls: 'TLS 1.3',
        rows: [
          { name: 'direct', upMiBps: 900, downMiBps: 1000 },
          {
            name: 'stunnel',
            version: '5.68',
            upMiBps: 300,
            downMiBps: 310,
            cpuUsPerMiB: { outbound: 1000, inbound: 1000 },
          },
          {
            name: 'meshauth',
            version: 'node',
            upMiBps: 200,
            downMiBps: 210,
            cpuUsPerMiB: { outbound: 1500, inbound: 1500 },
          },
          { name: 'other', unavailable: 'not installed' },
        ],
      },
    });
    expect(table.rows[1]?.[4]).toBe('1.00×');
    expect(table.rows[2]).toEqual(['meshauth node', '200', '210', '1500 / 1500', '1.50×']);
    expect(table.rows[3]).toEqual(['other', 'not available: not installed']);
  });
});

const HAVE_STUNNEL = findBinary('stunnel4') !== undefined || findBinary('stunnel') !== undefined;

describe('tunnel pairs do the mTLS hop', () => {
  let dir = '';
  let pki: BenchPki;
  let foreign: BenchPki;
  let app: Server;
  let appPort = 0;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshauth-tcp-bench-test-'));
    pki = await createBenchPki(dir);
    await mkdir(join(dir, 'foreign'));
    foreign = await createBenchPki(join(dir, 'foreign'));
    app = createServer((socket) => {
      socket.on('error', () => undefined);
      socket.pipe(socket);
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    appPort = (app.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => app.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  const pairs: { name: string; installed: boolean; start: (pki: BenchPki) => Promise<TunnelPair> }[] = [
    { name: 'stunnel', installed: HAVE_STUNNEL, start: (p) => startStunnelPair(dir, p, appPort) },
    { name: 'meshauth', installed: true, start: (p) => startMeshauthTcpPair(p, appPort) },
  ];
  for (const pair of pairs) {
    it.skipIf(!pair.installed)(`ok/${pair.name} echoes bytes with the bench SVIDs`, async () => {
      const running = await pair.start(pki);
      try {
        expect(await echoOnce(running.port)).toBe('ping');
      } finally {
        await running.stop();
      }
    });
    it.skipIf(!pair.installed)(`fail/${pair.name} refuses a client certificate from another CA`, async () => {
      const running = await pair.start({ ...pki, clientFiles: foreign.clientFiles, client: foreign.client });
      try {
        expect(await echoOnce(running.port)).toBe('');
      } finally {
        await running.stop();
      }
    });
  }
});

/** Sends "ping", half-closes, and resolves with what came back before the connection closed. */
function echoOnce(port: number): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const socket = connect(port, '127.0.0.1', () => socket.end('ping'));
    socket.on('data', (d: Buffer) => {
      text += d.toString();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(text));
    socket.setTimeout(10_000, () => socket.destroy());
  });
}
