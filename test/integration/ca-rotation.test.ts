// Rotation against a running CA: `ca rotate --intermediate`, `--root` and `--root --activate` done from "another
// process" (the same functions the CLI calls) are picked up without a restart, no request fails, and leaves issued
// before each step keep verifying against the bundle.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchBundle as fetchBundleResponse, requestSvid } from '../../src/agent/ca-client.js';
import {
  activateNextRoot,
  type CaServer,
  createJoinToken,
  loadCaMaterial,
  publishNextRoot,
  rotateIntermediate,
  startCaServer,
} from '../../src/ca/index.js';
import { TrustDomain } from '../../src/identity/index.js';
import {
  createCsrPem,
  generateKeyPair,
  parseCertificatesPem,
  TrustBundle,
  validateX509Svid,
  type x509,
} from '../../src/pki/index.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { makeCaDir } from '../helpers/ca-dir.js';
import { waitFor } from '../helpers/wait.js';

const ID = 'spiffe://example.org/ns/shop/sa/web';
const TD = TrustDomain.parse('example.org');

let dir: string;
let server: CaServer;
let bundlePem: string;

beforeAll(async () => {
  const ca = await makeCaDir();
  dir = ca.dir;
  server = await startCaServer({
    dir,
    listen: '127.0.0.1:0',
    svidTtlMs: 10 * 60_000,
    logger: silentLogger(),
    metrics: new Metrics(),
  });
  bundlePem = (await loadCaMaterial(dir)).bundle.toPem();
});
afterAll(async () => {
  await server?.close();
});

async function fetchBundle(connection: { caUrl: string; bundlePem: string }): Promise<string[]> {
  return (await fetchBundleResponse({ ...connection, trustDomain: TD })).bundlePem;
}

async function issue(): Promise<x509.X509Certificate[]> {
  const token = await createJoinToken({ dir, id: ID, ttlMs: 60_000 });
  const csrPem = await createCsrPem(await generateKeyPair('p256'));
  const response = await requestSvid({ caUrl: server.url, bundlePem, trustDomain: TD }, { csrPem, token });
  return parseCertificatesPem(response.certChainPem.join(''));
}

/** Issues SVIDs back to back until stopped; every failure is recorded. */
function backgroundLoad(): { stop: () => Promise<{ ok: number; failed: unknown[] }> } {
  let running = true;
  const failed: unknown[] = [];
  let ok = 0;
  const loop = (async () => {
    for (let i = 0; running && i < 2000; i++) {
      try {
        await issue();
        ok++;
      } catch (error) {
        failed.push(error);
      }
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { ok, failed };
    },
  };
}

/** Polls (bounded) until a freshly issued chain satisfies `done`. */
async function issueUntil(done: (chain: x509.X509Certificate[]) => boolean): Promise<x509.X509Certificate[]> {
  return waitFor(
    'the CA to pick up the rotation',
    async () => {
      const chain = await issue();
      return done(chain) ? chain : undefined;
    },
    6_000,
    100,
  );
}

describe('ca rotate against a running CA', () => {
  it('ok/--intermediate: new SVIDs come from the new intermediate; old leaves still verify', async () => {
    const before = await issue();
    const load = backgroundLoad();
    const rotated = await rotateIntermediate(dir);
    const after = await issueUntil((chain) => chain[1]?.serialNumber === rotated.serial);
    const { ok, failed } = await load.stop();
    expect(failed).toEqual([]);
    expect(ok).toBeGreaterThan(0);
    const bundle = TrustBundle.fromPem(TD, (await fetchBundle({ caUrl: server.url, bundlePem })).join(''));
    const now = new Date();
    expect(validateX509Svid(before, bundle, now).toString()).toBe(ID);
    expect(validateX509Svid(after, bundle, now).toString()).toBe(ID);
    expect(before[1]?.serialNumber).not.toBe(after[1]?.serialNumber);
  });

  it('ok/--root then --root --activate: both old and new leaves verify against the bundle', async () => {
    const beforePublish = await issue();
    // Served (and kept, serialized) before the publish: the CA must not go on answering with the one-root document.
    expect(await fetchBundle({ caUrl: server.url, bundlePem })).toHaveLength(1);
    const load = backgroundLoad();
    const published = await publishNextRoot(dir);
    const roots = await waitFor(
      'both roots in the bundle',
      async () => {
        const fetched = await fetchBundle({ caUrl: server.url, bundlePem });
        return fetched.length >= 2 ? fetched : undefined;
      },
      6_000,
      100,
    );
    expect(roots).toHaveLength(2);
    const { failed: failedPublish } = await load.stop();
    expect(failedPublish).toEqual([]);
    // Clients learn the new root before it signs anything (this is what step 1 is for).
    bundlePem = roots.join('');
    const beforeActivate = await issue();
    expect(beforeActivate[1]?.issuer).toBe(beforePublish[1]?.issuer); // still the old root signing

    const load2 = backgroundLoad();
    await activateNextRoot(dir);
    const newRoot = parseCertificatesPem(roots[1] as string)[0] as x509.X509Certificate;
    const after = await issueUntil((chain) => chain[1]?.issuer === newRoot.subject);
    const { ok, failed } = await load2.stop();
    expect(failed).toEqual([]);
    expect(ok).toBeGreaterThan(0);
    expect(published.roots).toBe(2);

    const bundle = TrustBundle.fromPem(TD, (await fetchBundle({ caUrl: server.url, bundlePem })).join(''));
    expect(bundle.roots).toHaveLength(2);
    const now = new Date();
    for (const chain of [beforePublish, beforeActivate, after]) {
      expect(validateX509Svid(chain, bundle, now).toString()).toBe(ID);
    }
    // The old leaves do not verify against the new root alone, the new one does: both roots are needed for now.
    const newOnly = new TrustBundle(TD, [newRoot]);
    expect(() => validateX509Svid(beforePublish, newOnly, now)).toThrow();
    expect(validateX509Svid(after, newOnly, now).toString()).toBe(ID);
  });
});
