// The admin ports of the built CLI (`meshauth sidecar`'s and `ca serve --admin-listen`) with the V8 heap bounded as a
// 256Mi container bounds it: one client address pipelining `GET /metrics` on 16 connections without reading the
// answers. A probe found both processes dead of "JavaScript heap out of memory" within 2.4 s (sidecar) and 5.4 s (CA):
// node:http started every pipelined request, each queued answer holding its own copy of the exposition. Now the
// second request on a connection closes it, counted as `pipelined`, and the process keeps answering.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { type CliProcess, capturedProcess } from '../helpers/cli-process.js';
import { freePort } from '../helpers/free-port.js';
import { MAIN } from '../helpers/meshauth-cli.js';
import { waitFor } from '../helpers/wait.js';

const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

const HEAP_BOUND = { ...process.env, NODE_OPTIONS: '--max-old-space-size=192' };

function start(args: readonly string[], cwd: string): CliProcess {
  return capturedProcess(
    spawn(process.execPath, [MAIN, ...args], { cwd, env: HEAP_BOUND, stdio: ['ignore', 'pipe', 'pipe'] }),
    cleanups as (() => void)[],
  );
}

async function pipelinedClosures(port: number): Promise<number | undefined> {
  const response = await request(`http://127.0.0.1:${port}/metrics`).catch(() => undefined);
  const text = await response?.body.text();
  if (text === undefined) return undefined;
  const line = text
    .split('\n')
    .find((l) => l.startsWith('meshauth_connections_rejected_total{direction="admin",reason="pipelined"}'));
  return Number(line?.split(' ').pop() ?? 0);
}

/** 16 connections from 127.0.0.2, each sending 16,000 `GET /metrics` at once and never reading. */
async function flood(port: number): Promise<void> {
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      const socket: Socket = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
      cleanups.push(() => socket.destroy());
      socket.on('error', () => undefined);
      socket.pause();
      await new Promise<void>((resolve) => socket.once('connect', resolve));
      socket.write('GET /metrics HTTP/1.1\r\nhost: admin\r\n\r\n'.repeat(16_000));
    }),
  );
}

describe('admin ports under pipelined requests nobody reads (heap bounded at 192 MB)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshauth-admin-pipelining-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync(process.execPath, [MAIN, 'ca', 'init', '--trust-domain', 'example.org', '--dir', 'certs'], { cwd: dir });

  it.each(['ca serve --admin-listen', 'meshauth sidecar'])(
    'fail/%s: each pipelining connection is closed and counted; ok/the process keeps answering',
    async (which) => {
      const adminPort = await freePort();
      let child: CliProcess;
      if (which === 'ca serve --admin-listen') {
        child = start(
          ['ca', 'serve', '--dir', 'certs', '--listen', '127.0.0.1:0', '--admin-listen', `127.0.0.1:${adminPort}`],
          dir,
        );
      } else {
        writeFileSync(join(dir, 'token'), 'not-a-token\n', { mode: 0o600 });
        writeFileSync(
          join(dir, 'sidecar.yaml'),
          [
            'trustDomain: example.org',
            'ca: { url: "https://127.0.0.1:1", bundle: "certs/bundle.pem", token: "token" }',
            `inbound: { listen: "127.0.0.1:${await freePort()}", app: "127.0.0.1:1" }`,
            `outbound: { listen: "127.0.0.1:${await freePort()}" }`,
            `admin: { listen: "127.0.0.1:${adminPort}" }`,
          ].join('\n'),
        );
        child = start(['sidecar', '--config', 'sidecar.yaml'], dir);
      }
      await waitFor('the admin port', async () => (await pipelinedClosures(adminPort)) === 0, 20_000).catch(
        (error: Error) => {
          throw new Error(`${error.message}: ${child.output().slice(-600)}`);
        },
      );
      await flood(adminPort);
      await waitFor(
        '16 connections closed as pipelined',
        async () => (await pipelinedClosures(adminPort)) === 16,
        20_000,
      );
      expect(child.alive()).toBe(true);
      const livez = await request(`http://127.0.0.1:${adminPort}/livez`);
      expect(livez.statusCode).toBe(200);
      await livez.body.dump();
      expect(child.output()).not.toMatch(/heap out of memory/);
      child.child.kill('SIGTERM');
      await child.exited;
    },
    60_000,
  );
});
