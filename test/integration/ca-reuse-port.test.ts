// `ca serve --reuse-port`: two CA processes' servers bind one address with SO_REUSEPORT and the kernel spreads new
// connections over both (each replica has its own serving certificate, so the certificate a client sees names the
// replica); closing one leaves the address to the other. Without the option the second bind fails; on a Node that
// would ignore the option, the CA refuses it with a usage error.
import { connect, type PeerCertificate } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CaServer, loadCaMaterial, startCaServer } from '../../src/ca/index.js';
import { reusePortSupported } from '../../src/platform/index.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { makeCaDir } from '../helpers/ca-dir.js';

let ca: Awaited<ReturnType<typeof makeCaDir>>;
let bundlePem: string;
const replicas: CaServer[] = [];

beforeAll(async () => {
  ca = await makeCaDir();
  bundlePem = (await loadCaMaterial(ca.dir)).bundle.toPem();
});

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.close()));
  ca?.cleanup();
});

function replica(listen: string, reusePort: boolean): Promise<CaServer> {
  return startCaServer({
    dir: ca.dir,
    listen,
    svidTtlMs: 10 * 60_000,
    workers: 0,
    reusePort,
    logger: silentLogger(),
    metrics: new Metrics(),
  });
}

/** The fingerprint of the serving certificate met on one fresh TLS connection to `port`. */
function servingFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: bundlePem, checkServerIdentity: () => undefined }, () => {
      const cert: PeerCertificate = socket.getPeerCertificate();
      socket.destroy();
      resolve(cert.fingerprint256);
    });
    socket.once('error', reject);
  });
}

describe.skipIf(!reusePortSupported())('two replicas on one address (SO_REUSEPORT)', () => {
  it('ok/the kernel spreads connections over both; closing one leaves the address to the other', async () => {
    const first = await replica('127.0.0.1:0', true);
    replicas.push(first);
    const second = await replica(`127.0.0.1:${first.port}`, true);
    replicas.push(second);
    expect(second.port).toBe(first.port);

    const seen = new Map<string, number>();
    for (let i = 0; i < 60; i += 1) {
      const fingerprint = await servingFingerprint(first.port);
      seen.set(fingerprint, (seen.get(fingerprint) ?? 0) + 1);
    }
    expect(seen.size).toBe(2);
    // A fair spread is by the connection's hash; 60 connections leave each replica far more than 5.
    for (const count of seen.values()) expect(count).toBeGreaterThan(5);

    await first.close();
    replicas.splice(replicas.indexOf(first), 1);
    const after = new Set<string>();
    for (let i = 0; i < 10; i += 1) after.add(await servingFingerprint(second.port));
    expect(after.size).toBe(1);
    expect(seen.has([...after][0] as string)).toBe(true);
  });

  it('fail/without --reuse-port the second replica cannot bind the address', async () => {
    const first = await replica('127.0.0.1:0', false);
    replicas.push(first);
    await expect(replica(`127.0.0.1:${first.port}`, true)).rejects.toMatchObject({
      code: 'MESHAUTH_ERR_LISTEN',
      message: expect.stringContaining('--listen: cannot listen on 127.0.0.1'),
    });
  });
});

describe.skipIf(reusePortSupported())('a Node that would ignore reusePort', () => {
  it('fail/--reuse-port is a usage error naming the Node version needed', async () => {
    await expect(replica('127.0.0.1:0', true)).rejects.toMatchObject({
      code: 'MESHAUTH_ERR_USAGE',
      message: expect.stringContaining('22.12'),
    });
  });
});
