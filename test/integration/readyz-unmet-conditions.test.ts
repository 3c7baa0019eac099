// /readyz names what it waits for: a 503 body listing each unmet condition (no SVID, an app that refuses
// connections), 200 `ready` unchanged; the app probe logs the app going away and coming back, once each.
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CredentialHolder } from '../../src/agent/credential-holder.js';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { type RunningSidecar, startSidecar } from '../../src/sidecar/index.js';
import { Metrics } from '../../src/telemetry/index.js';
import { freePort } from '../helpers/free-port.js';
import { logLines } from '../helpers/log-lines.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function configFor(appPort: number) {
  return sidecarConfigFromObject(
    {
      trustDomain: 'example.org',
      ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent/bundle.pem', token: '/nonexistent/token' },
      inbound: { listen: '127.0.0.1:0', app: `127.0.0.1:${appPort}` },
      outbound: { listen: '127.0.0.1:0' },
      admin: { listen: '127.0.0.1:0' },
    },
    'readyz.yaml',
  );
}

async function startApp(port: number): Promise<Server> {
  const app = createServer((socket) => socket.end());
  await new Promise<void>((resolve) => app.listen(port, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => (app.listening ? app.close(resolve) : resolve(undefined))));
  return app;
}

async function readyz(sidecar: RunningSidecar): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${sidecar.adminPort}/readyz`);
  return { status: response.status, body: await response.text() };
}

describe('/readyz names its unmet conditions', () => {
  it('fail/no SVID yet and an app that refuses connections are both named', async () => {
    const appPort = await freePort();
    const sidecar = await startSidecar(configFor(appPort), {
      logger: logLines('sidecar').logger,
      metrics: new Metrics(),
      agent: false,
    });
    cleanups.push(() => sidecar.close(0));
    expect(await readyz(sidecar)).toEqual({
      status: 503,
      body: `not ready: no SVID yet; app 127.0.0.1:${appPort} not accepting connections (ECONNREFUSED)\n`,
    });
  });

  it('fail/an agent that cannot get its first SVID: /readyz says why, as the log does (no need to read it)', async () => {
    const appPort = await freePort();
    const app = await startApp(appPort);
    const sidecar = await startSidecar(configFor(appPort), {
      logger: logLines('sidecar').logger,
      metrics: new Metrics(),
    });
    cleanups.push(() => sidecar.close(0));
    let body = '';
    await waitFor('a failed first attempt named', async () => {
      body = (await readyz(sidecar)).body;
      return body.includes('last attempt');
    });
    expect(body).toMatch(/^not ready: no SVID yet \(last attempt: MESHAUTH_ERR_[A-Z_]+: .*\/nonexistent\/.*\)\n$/);
    expect(app.listening).toBe(true);
  });

  it('ok/ready answers as before; the app going away and coming back is logged once each', async () => {
    const ca = await TestCa.create();
    const svid = await ca.issue({ id: ca.idFor('/ns/shop/sa/web') });
    const appPort = await freePort();
    let app = await startApp(appPort);
    const log = logLines('sidecar');
    const sidecar = await startSidecar(configFor(appPort), {
      logger: log.logger,
      metrics: new Metrics(),
      holder: new CredentialHolder({ svid: svid.svid, bundle: ca.bundle }),
    });
    cleanups.push(() => sidecar.close(0));
    expect(await readyz(sidecar)).toEqual({ status: 200, body: 'ready\n' });

    await new Promise((resolve) => app.close(resolve));
    const unmet = `not ready: app 127.0.0.1:${appPort} not accepting connections (ECONNREFUSED)\n`;
    await waitFor('readyz to name the app', async () => (await readyz(sidecar)).body === unmet, 5_000);
    expect(log.find({ event: 'app_unreachable' })).toEqual([
      expect.objectContaining({ level: 'warn', app: `127.0.0.1:${appPort}`, code: 'ECONNREFUSED' }),
    ]);
    expect(log.find({ event: 'app_reachable' })).toEqual([]);

    app = await startApp(appPort);
    await waitFor('readyz to be ready again', async () => (await readyz(sidecar)).status === 200, 5_000);
    expect(log.find({ event: 'app_reachable' })).toEqual([
      expect.objectContaining({ level: 'warn', app: `127.0.0.1:${appPort}` }),
    ]);
    expect(log.find({ event: 'app_unreachable' })).toHaveLength(1);
  });
});
