// The app probe logs changes of the app's reachability, never each look: one warn line when the app stops
// accepting connections (with its address and the error code), one when it accepts them again.
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AppProbe, type AppProbeResult } from '../../src/sidecar/app-probe.js';
import { freePort } from '../helpers/free-port.js';
import { logLines } from '../helpers/log-lines.js';
import { waitFor } from '../helpers/wait.js';

let app: Server | undefined;
afterEach(async () => {
  if (app?.listening) await new Promise((resolve) => app?.close(resolve));
});

async function listenOn(port: number): Promise<void> {
  app = createServer((socket) => socket.end());
  await new Promise<void>((resolve) => app?.listen(port, '127.0.0.1', resolve));
}

/** Asks until the probe has looked at the app `count` times afresh (a cached answer is the same object). */
async function looks(probe: AppProbe, count: number): Promise<AppProbeResult[]> {
  const fresh = new Set<AppProbeResult>();
  await waitFor(`${count} fresh looks`, async () => fresh.add(await probe.check()).size >= count, 10_000, 50);
  return [...fresh];
}

describe('app probe log lines', () => {
  it('ok/one line per change of reachability, none per look', async () => {
    const port = await freePort();
    const log = logLines('sidecar');
    const probe = new AppProbe({ host: '127.0.0.1', port }, { logger: log.logger });

    expect(await looks(probe, 3)).toEqual(Array(3).fill({ ok: false, code: 'ECONNREFUSED' }));
    expect(log.find({ event: 'app_unreachable' })).toEqual([
      expect.objectContaining({ level: 'warn', app: `127.0.0.1:${port}`, code: 'ECONNREFUSED' }),
    ]);

    await listenOn(port);
    await waitFor('the app to be reachable', () => probe.reachable(), 5_000);
    await looks(probe, 3);
    expect(log.find({ event: 'app_reachable' })).toEqual([
      expect.objectContaining({ level: 'warn', app: `127.0.0.1:${port}` }),
    ]);

    await new Promise((resolve) => app?.close(resolve));
    await waitFor('the app to be unreachable', async () => !(await probe.reachable()), 5_000);
    expect(log.find({ event: 'app_unreachable' })).toHaveLength(2);
    expect(log.find({ event: 'app_reachable' })).toHaveLength(1);
  });

  it('ok/an app reachable from the first look is not logged', async () => {
    const port = await freePort();
    await listenOn(port);
    const log = logLines('sidecar');
    const probe = new AppProbe({ host: '127.0.0.1', port }, { logger: log.logger });
    expect(await looks(probe, 2)).toEqual([{ ok: true }, { ok: true }]);
    expect(log.lines).toEqual([]);
  });
});
