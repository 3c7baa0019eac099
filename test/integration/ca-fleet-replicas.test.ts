// Stateless CA replicas: two CA processes' worth of servers over the same read-only directory (a mounted Secret:
// no root key, no join-token store) with service-account bootstrap issue interchangeably and serve the same bundle
// and JWKS; behind one address, a replica taken down mid-storm costs no agent its SVID.
import { join } from 'node:path';
import { request, Agent as UndiciAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTcpBalancer, type TcpBalancer } from '../../bench/fleet/tcp-balancer.js';
import { fetchBundle } from '../../src/agent/ca-client.js';
import { type CaServer, loadCaMaterial, startCaServer } from '../../src/ca/index.js';
import { TrustDomain } from '../../src/identity/index.js';
import { validateX509Svid } from '../../src/pki/index.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { makeCaDir } from '../helpers/ca-dir.js';
import { FLEET_K8S_ISSUER, type Fleet, fleetCluster, startFleet } from '../helpers/fleet.js';
import { readOnlyCopy } from '../helpers/readonly-ca-dir.js';
import { waitFor } from '../helpers/wait.js';

const TD = TrustDomain.parse('example.org');
const AGENTS = 200;
let ca: Awaited<ReturnType<typeof makeCaDir>>;
let secretDir: string;
let bundlePem: string;
let replicas: CaServer[] = [];
const metrics: Metrics[] = [];
let balancer: TcpBalancer | undefined;
let fleet: Fleet | undefined;
let tokenFiles: string[];

beforeAll(async () => {
  ca = await makeCaDir();
  secretDir = readOnlyCopy(ca.dir, join(ca.dir, '..', 'secret'));
  bundlePem = (await loadCaMaterial(secretDir)).bundle.toPem();
  const cluster = await fleetCluster(join(ca.dir, '..'));
  tokenFiles = await cluster.tokenFiles(AGENTS, 'wl');
  for (let i = 0; i < 2; i += 1) {
    metrics.push(new Metrics());
    replicas.push(
      await startCaServer({
        dir: secretDir,
        listen: '127.0.0.1:0',
        svidTtlMs: 10 * 60_000,
        issuerUrl: 'https://meshauth-ca.meshauth.svc:8443',
        kubernetes: { issuer: FLEET_K8S_ISSUER, jwks: cluster.jwksFile },
        workers: 1,
        logger: silentLogger(),
        metrics: metrics[i] as Metrics,
      }),
    );
  }
  balancer = await startTcpBalancer(replicas.map((r) => ({ host: '127.0.0.1', port: r.port })));
});

afterAll(async () => {
  await fleet?.close();
  await balancer?.close();
  await Promise.all(replicas.map((r) => r.close()));
  ca?.cleanup();
});

async function getJson(url: string): Promise<unknown> {
  const dispatcher = new UndiciAgent({ connect: { ca: bundlePem, checkServerIdentity: () => undefined } });
  try {
    const response = await request(url, { dispatcher });
    expect(response.statusCode).toBe(200);
    return await response.body.json();
  } finally {
    await dispatcher.close();
  }
}

describe('replicas over one read-only directory', () => {
  it('ok/bundle and JWKS are identical on every replica', async () => {
    const [a, b] = replicas as [CaServer, CaServer];
    const bundles = await Promise.all(
      [a, b].map((r) => fetchBundle({ caUrl: r.url, trustDomain: TD, bundlePem }).then((x) => x.bundlePem)),
    );
    expect(bundles[0]).toEqual(bundles[1]);
    const jwks = await Promise.all([a, b].map((r) => getJson(`${r.url}/v1/jwks`)));
    expect((jwks[0] as { keys: unknown[] }).keys.length).toBeGreaterThan(0);
    expect(jwks[0]).toEqual(jwks[1]);
  });

  it('ok/a replica taken down mid-storm: the other issues the rest, every agent holds a valid SVID', async () => {
    const [survivor, victim] = replicas as [CaServer, CaServer];
    if (balancer === undefined) throw new Error('no balancer');
    fleet = startFleet({
      caUrl: `https://127.0.0.1:${balancer.port}`,
      bundleFile: join(secretDir, 'bundle.pem'),
      tokenFiles,
    });
    const current = fleet;
    await waitFor('a quarter of the fleet ready', () => current.ready() >= AGENTS / 4, 120_000);
    // Every open connection is cut and the port closes, as when the pod is killed.
    await victim.close();
    replicas = [survivor];
    await waitFor('every agent holding an SVID', () => current.ready() === AGENTS, 120_000);
    const material = await loadCaMaterial(secretDir);
    for (const holder of current.holders) {
      const svid = holder.current?.svid;
      expect(svid).toBeDefined();
      if (svid === undefined) continue;
      expect(() => validateX509Svid(svid.certificates, material.bundle, new Date())).not.toThrow();
    }
    const issuedBySurvivor = await metrics[0]?.caSvidsIssued.get();
    const survivorCount = issuedBySurvivor?.values.find((v) => v.labels.method === 'k8s_sa_token')?.value ?? 0;
    expect(survivorCount).toBeGreaterThan(AGENTS / 4);
  }, 180_000);
});
