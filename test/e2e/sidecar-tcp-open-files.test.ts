// `meshauth sidecar` under a low open-file limit (`ulimit -n`, as a container may set it) with an `outbound.tcp`
// route: the TCP listeners share what the limit leaves the outbound, so a local process that floods one of them gets
// resets past that share, counted as `limit`, while the pod stays ready. Before, each TCP listener took up to 4096
// connections at two descriptors each, whatever the limit: 1,000 connections took every descriptor of a sidecar
// limited to 900, its /readyz stopped answering and its inbound could not reach its own app.

import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { capturedProcess } from '../helpers/cli-process.js';
import { freePort } from '../helpers/free-port.js';
import { MAIN } from '../helpers/meshauth-cli.js';
import { rawClient } from '../helpers/tcp-client.js';
import { waitFor } from '../helpers/wait.js';
import { CaHarness, type Cleanup } from '../integration/agent-harness.js';

const CAPPED = 'outbound.tcp listeners: open tunnels capped to fit the open-file limit (ulimit -n) beside the inbound';
const OPEN_FILES = 1300;

const cleanups: Cleanup[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function listening<T extends { listen: (port: number, host: string, cb: () => void) => unknown }>(server: T) {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

describe(`meshauth sidecar with ulimit -n ${OPEN_FILES} and an outbound.tcp route`, () => {
  it('fail/a flood of one TCP listener is reset past its share of the descriptors; ok/the pod stays ready', async () => {
    const ca = await CaHarness.start(3600_000, cleanups);
    const app = await listening(createHttpServer((_req, res) => res.end('ok')));
    cleanups.push(() => new Promise<void>((resolve) => app.close(() => resolve())));
    // The peer accepts and never answers: each tunnel hangs in its handshake, holding its two descriptors.
    const held = new Set<Socket>();
    const peer = await listening(createServer((socket) => held.add(socket.on('error', () => undefined))));
    cleanups.push(() => {
      for (const socket of held) socket.destroy();
      return new Promise<void>((resolve) => peer.close(() => resolve()));
    });

    const tokenFile = join(ca.dir, 'db.token');
    writeFileSync(tokenFile, await ca.token('spiffe://example.org/ns/shop/sa/orders'));
    const inboundPort = await freePort();
    const outboundPort = await freePort();
    const adminPort = await freePort();
    const tcpPort = await freePort();
    const configFile = join(ca.dir, 'orders.yaml');
    writeFileSync(
      configFile,
      [
        'trustDomain: example.org',
        `ca: { url: "${ca.url}", bundle: "${ca.bundleFile}", token: "${tokenFile}" }`,
        `inbound: { listen: "127.0.0.1:${inboundPort}", app: "127.0.0.1:${(app.address() as AddressInfo).port}" }`,
        `outbound:`,
        `  listen: "127.0.0.1:${outboundPort}"`,
        `  tcp: { "127.0.0.1:${tcpPort}": { address: "127.0.0.1:${(peer.address() as AddressInfo).port}", ids: ["spiffe://example.org/ns/db/sa/postgres"] } }`,
        `admin: { listen: "127.0.0.1:${adminPort}" }`,
      ].join('\n'),
    );
    const sidecar = capturedProcess(
      spawn(
        '/bin/sh',
        ['-c', `ulimit -n ${OPEN_FILES} && exec "$0" "$@"`, process.execPath, MAIN, 'sidecar', '--config', configFile],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      ),
      cleanups,
    );
    const ready = async () => {
      const response = await request(`http://127.0.0.1:${adminPort}/readyz`).catch(() => undefined);
      await response?.body.dump();
      return response?.statusCode === 200;
    };
    await waitFor('the sidecar to be ready', ready, 20_000, 100).catch((error: Error) => {
      throw new Error(`${error.message} (output: ${sidecar.output().slice(-800)})`);
    });
    const capped = sidecar.logs().find((l) => l.msg === CAPPED);
    expect(capped).toMatchObject({ level: 'warn', direction: 'outbound', protocol: 'tcp', configured: 4096 });
    const applied = Number(capped?.applied);
    expect(applied).toBeGreaterThan(0);
    expect(applied).toBeLessThan(OPEN_FILES / 2);

    const over = 10;
    const outcomes = await Promise.all(
      Array.from({ length: applied + over }, () =>
        rawClient(tcpPort).then(
          (client) => {
            cleanups.push(() => void client.socket.destroy());
            return client;
          },
          () => undefined,
        ),
      ),
    );
    const limitCount = async () => {
      const response = await request(`http://127.0.0.1:${adminPort}/metrics`);
      const text = await response.body.text();
      const line = text.split('\n').find((l) => /^meshauth_tcp_connections_total\{.*result="limit"/.test(l));
      return Number(line?.split(' ').pop() ?? 0);
    };
    await waitFor('the connections past the share to be refused', async () => (await limitCount()) === over, 20_000);
    expect(await ready()).toBe(true);
    const refusals = sidecar.logs().filter((l) => l.limit === 'openFiles');
    expect(refusals.length).toBeGreaterThanOrEqual(1);
    for (const client of outcomes) client?.socket.destroy();
    // An app's FIN leaves its tunnel half open (a client may still await an answer), so the hung handshakes would
    // hold the drain for their connect timeout: the peer lets them go first.
    for (const socket of held) socket.destroy();
    sidecar.child.kill('SIGTERM');
    expect((await sidecar.exited).code).toBe(0);
  }, 60_000);
});
