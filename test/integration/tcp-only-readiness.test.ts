// /readyz of a TCP-only sidecar (inbound.tcp set, inbound.app left out): ready when the TCP app accepts connections,
// not ready when it stops; the default inbound.app port, where nothing listens, is not waited for.

import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialHolder } from '../../src/agent/credential-holder.js';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { type RunningSidecar, startSidecar } from '../../src/sidecar/index.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

describe('readiness of a TCP-only sidecar', () => {
  let app: Server;
  let sidecar: RunningSidecar;
  const readyz = async () => (await fetch(`http://127.0.0.1:${sidecar.adminPort}/readyz`)).status;

  beforeAll(async () => {
    const ca = await TestCa.create();
    app = createServer((socket) => socket.end());
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    const svid = await ca.issue({ id: ca.idFor('/ns/data/sa/redis') });
    const config = sidecarConfigFromObject(
      {
        trustDomain: 'example.org',
        ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent/bundle.pem', token: '/nonexistent/token' },
        // No inbound.app: its default (127.0.0.1:8080) is no app of this pod.
        inbound: { listen: '127.0.0.1:0', tcp: { app: `127.0.0.1:${(app.address() as AddressInfo).port}` } },
        outbound: { listen: '127.0.0.1:0' },
        admin: { listen: '127.0.0.1:0' },
      },
      'tcp-only.yaml',
    );
    sidecar = await startSidecar(config, {
      logger: silentLogger(),
      metrics: new Metrics(),
      holder: new CredentialHolder({ svid: svid.svid, bundle: ca.bundle }),
    });
  });
  afterAll(async () => {
    await sidecar?.close(0);
    if (app.listening) await new Promise((resolve) => app.close(resolve));
  });

  it('ok/ready while the TCP app accepts connections', async () => {
    expect(await readyz()).toBe(200);
  });

  it('fail/not ready once the TCP app stops accepting', async () => {
    await new Promise((resolve) => app.close(resolve));
    // The probe caches its answer for half a second: ask until it has looked again (bounded).
    const status = await waitFor(
      'readiness to change',
      async () => {
        const now = await readyz();
        return now === 200 ? undefined : now;
      },
      4_000,
      100,
    );
    expect(status).toBe(503);
  });
});
