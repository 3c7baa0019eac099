// Outside review (2026-12-02) probe: the external listener's per-source count (ConnectionGuard) must not leak over
// closes, refused connections and failed handshakes.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { jwksText, signingKey } from '../helpers/end-user-keys.js';
import { startApp, startTestSidecar, type TestApp, type TestSidecar } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

const TD = 'example.org';
const ISS = 'https://issuer.test';
const MAX_CONNECTIONS = 8; // a quarter: 2 per source
let ca: TestCa;
let dir: string;
let app: TestApp;
let sc: TestSidecar;
const sockets = new Set<TLSSocket>();

beforeAll(async () => {
  ca = await TestCa.create(TD);
  dir = mkdtempSync(join(tmpdir(), 'meshauth-ext-edge-'));
  const key = await signingKey('k1');
  writeFileSync(join(dir, 'jwks.json'), jwksText(key));
  const server = await ca.issue({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  writeFileSync(join(dir, 'c.crt'), server.chainPem);
  writeFileSync(join(dir, 'c.key'), server.keyPem, { mode: 0o600 });
  app = await startApp();
  const config = sidecarConfigFromObject(
    {
      trustDomain: TD,
      ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent', token: '/nonexistent' },
      inbound: {
        listen: '127.0.0.1:0',
        app: `127.0.0.1:${app.port}`,
        endUser: {
          issuers: [
            { issuer: ISS, jwksUri: `file://${join(dir, 'jwks.json')}`, audiences: ['api'], algorithms: ['ES256'] },
          ],
          vouchers: [`spiffe://${TD}/ns/a/sa/api`],
        },
        external: { listen: '127.0.0.1:0', cert: join(dir, 'c.crt'), key: join(dir, 'c.key') },
      },
      outbound: { listen: '127.0.0.1:0', routes: {} },
      admin: { listen: '127.0.0.1:0' },
    },
    'external-edge.yaml',
  );
  sc = await startTestSidecar(ca, `spiffe://${TD}/ns/a/sa/api`, config, {
    inboundLimits: { maxConnections: MAX_CONNECTIONS },
  });
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await sc?.sidecar.close(0);
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A TLS connection to the external port from `localAddress`; resolves once the handshake is done (or fails). */
function open(localAddress: string): Promise<TLSSocket | undefined> {
  return new Promise((resolve) => {
    const s = tlsConnect({
      host: '127.0.0.1',
      port: sc.sidecar.externalPort as number,
      ...({ localAddress } as object), // passed on to net.connect (not in @types/node's TLS options)
      ca: ca.rootPem,
      servername: 'localhost',
      ALPNProtocols: ['http/1.1'],
    });
    sockets.add(s);
    const timer = setTimeout(() => resolve(undefined), 2_000);
    s.once('secureConnect', () => {
      clearTimeout(timer);
      resolve(s);
    });
    s.on('error', () => {
      clearTimeout(timer);
      resolve(undefined);
    });
  });
}

async function churn(localAddress: string): Promise<void> {
  // refused connections (third from the source), failed handshakes (garbage), and TLS closes, repeated
  for (let round = 0; round < 4; round++) {
    const a = await open(localAddress);
    const b = await open(localAddress);
    const refused = await open(localAddress);
    expect(refused).toBeUndefined();
    a?.destroy();
    b?.destroy();
    await new Promise((r) => setTimeout(r, 100));
    await new Promise<void>((resolve) => {
      const raw = netConnect({ host: '127.0.0.1', port: sc.sidecar.externalPort as number, localAddress });
      raw.on('error', () => undefined);
      raw.once('connect', () => raw.end('not a client hello'));
      raw.once('close', () => resolve());
    });
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('external listener: per-source count', () => {
  it('ok/after refusals, failed handshakes and closes the source gets its two places back', async () => {
    await churn('127.0.0.3');
    const a = await open('127.0.0.3');
    const b = await open('127.0.0.3');
    expect(a).toBeDefined();
    expect(b).toBeDefined();
    const text = await sc.metrics.registry.getSingleMetricAsString('meshauth_connections_rejected_total');
    expect(text).toContain('reason="max_connections_per_source"} 4');
    a?.destroy();
    b?.destroy();
  });
});
