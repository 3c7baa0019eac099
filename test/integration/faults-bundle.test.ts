// Fault injection on real processes: the trust bundle changes under load. A `meshauth ca serve` (6-second SVIDs)
// and two `meshauth sidecar` processes carry 12 concurrent keep-alive clients while the root is rotated the way
// docs/ca.md tells an operator to: `ca rotate --root` (a second root in the bundle), `ca rotate --root --activate`
// (new SVIDs under the new root), then `ca rotate --root --retire --force` (the old root leaves bundle.pem). A peer still holding an SVID of the old root (issued offline) keeps a connection open to the server
// sidecar throughout. Asserted: no failed request while both roots are trusted, the removal cuts the old-root
// peer's connection (metric, one log line) and refuses its new handshakes, no process crashes, and the mesh
// traffic goes on without a restart.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ConnectionOptions, connect } from 'node:tls';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJoinToken, initCa } from '../../src/ca/index.js';
import { TrustDomain } from '../../src/identity/index.js';
import { type CliProcess, freePort, scrapeMetric, spawnCli, waitForCli } from '../helpers/cli-process.js';
import { waitFor } from '../helpers/fault-harness.js';
import { MAIN } from '../helpers/meshauth-cli.js';
import { runCommand } from '../helpers/sidecar-harness.js';

const TD = 'example.org';
const ID_A = `spiffe://${TD}/ns/faults/sa/a`;
const ID_B = `spiffe://${TD}/ns/faults/sa/b`;
const ID_LEGACY = `spiffe://${TD}/ns/faults/sa/legacy`;
const CLIENTS = 12;
const CUT_MESSAGE = 'connections closed: their root left the trust bundle';

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function cli(...args: string[]): Promise<string> {
  const result = await runCommand(process.execPath, [MAIN, ...args]);
  if (result.code !== 0) throw new Error(`meshauth ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
}

/** PEM blocks of a file, each normalized to its base64 body (for comparing certificates). */
function pemBlocks(text: string): string[] {
  return [...text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)].map((m) => m[0]);
}

type Phase = 'one root' | 'published' | 'activated' | 'retired';

describe('the trust bundle changes under load (root rotation on real processes)', () => {
  let dir: string;
  let caDir: string;
  let app: Server;
  let ca: CliProcess;
  let a: CliProcess;
  let b: CliProcess;
  const ports = { ca: 0, aIn: 0, aOut: 0, aAdmin: 0, bIn: 0, bAdmin: 0 };

  async function startSidecar(name: string, id: string, yaml: string[]): Promise<CliProcess> {
    const token = join(dir, `${name}.token`);
    writeFileSync(token, await createJoinToken({ dir: caDir, id, ttlMs: 10 * 60_000 }), { mode: 0o600 });
    // The sidecar's own copy of the bundle, as a deployment mounts it: only the CA's answers update it later.
    const bundle = join(dir, `${name}-bundle.pem`);
    writeFileSync(bundle, readFileSync(join(caDir, 'bundle.pem')));
    const config = join(dir, `${name}.yaml`);
    writeFileSync(
      config,
      [
        `trustDomain: ${TD}`,
        `ca: { url: "https://127.0.0.1:${ports.ca}", bundle: "${bundle}", token: "${token}" }`,
        ...yaml,
      ].join('\n'),
    );
    return spawnCli(['sidecar', '--config', config], cleanups);
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshauth-faults-bundle-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    caDir = join(dir, 'ca');
    // The CA directory and the join tokens are made in this process, as `ca init` and `ca token create` make them
    // (their own tests cover the commands): the processes under test are `ca serve`, the sidecars and `ca rotate`.
    await initCa({ dir: caDir, trustDomain: TrustDomain.parse(TD) });
    for (const key of Object.keys(ports) as (keyof typeof ports)[]) ports[key] = await freePort();
    // Each step of the rotation waits for a renewal of both sidecars, at half an SVID's life: short SVIDs keep those
    // waits short, and the 3 s left after each renewal are plenty for a CA that never goes away.
    ca = spawnCli(['ca', 'serve', '--dir', caDir, '--listen', `127.0.0.1:${ports.ca}`, '--svid-ttl', '6s'], cleanups);
    await waitForCli(ca, 'the CA to listen', () => ca.output().includes('listening') || undefined, 20_000);

    app = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'));
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          app.closeAllConnections();
          app.close(() => resolve());
        }),
    );
    const appPort = (app.address() as { port: number }).port;
    // The two sidecars start side by side (tokens, process start, bootstrap): A's route to B is only dialled later.
    [b, a] = await Promise.all([
      startSidecar('b', ID_B, [
        `inbound: { listen: "127.0.0.1:${ports.bIn}", app: "127.0.0.1:${appPort}" }`,
        // Never the default 15001: another CLI sidecar in the parallel suite may hold it.
        'outbound: { listen: "127.0.0.1:0" }',
        `admin: { listen: "127.0.0.1:${ports.bAdmin}" }`,
      ]),
      startSidecar('a', ID_A, [
        `inbound: { listen: "127.0.0.1:${ports.aIn}", app: "127.0.0.1:${appPort}" }`,
        `outbound: { listen: "127.0.0.1:${ports.aOut}", routes: { "b.mesh": { address: "127.0.0.1:${ports.bIn}", ids: ["${ID_B}"] } } }`,
        `admin: { listen: "127.0.0.1:${ports.aAdmin}" }`,
      ]),
    ]);
    await Promise.all(
      (
        [
          [a, ports.aAdmin],
          [b, ports.bAdmin],
        ] as const
      ).map(([sidecar, port]) =>
        waitForCli(
          sidecar,
          'the sidecar to be ready',
          async () => (await request(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.statusCode === 200,
          20_000,
        ).catch((error: Error) => {
          throw new Error(`${error.message}\nCA: ${ca.output().slice(-2000)}`);
        }),
      ),
    );
  }, 60_000);

  /** A log line of a sidecar taking a bundle of `roots` roots, from a renewal or from its bundle refresh. */
  const bundleWith = (roots: number) => (l: Record<string, unknown>) =>
    (l.msg === 'trust bundle updated by the CA' || l.msg === 'trust bundle updated') && l.roots === roots;

  /** Waits for `sidecar` to log that it took a bundle of `roots` roots. */
  async function holdsBundleOf(sidecar: CliProcess, roots: number): Promise<void> {
    await waitFor(`a bundle of ${roots} root(s)`, () => sidecar.logs().some(bundleWith(roots)) || undefined, 40_000);
  }

  /**
   * The certificate a sidecar's inbound listener presents (its current SVID), to a client holding `identity`. The
   * client ends the connection cleanly once the handshake is done, so the sidecar counts no failed handshake.
   */
  function servedSvid(port: number, identity: ConnectionOptions): Promise<X509Certificate | undefined> {
    return new Promise((resolve) => {
      const socket = connect({ host: '127.0.0.1', port, ...identity, checkServerIdentity: () => undefined }, () => {
        const leaf = socket.getPeerX509Certificate();
        socket.end();
        socket.on('close', () => resolve(leaf));
      });
      socket.on('error', () => resolve(undefined));
    });
  }

  it('ok/no request fails while both roots are trusted; fail/the removed root’s peer is cut and refused; traffic goes on', async () => {
    let phase: Phase = 'one root';
    const results: { phase: Phase; status: number | string }[] = [];
    let stop = false;

    // Mesh traffic: 12 concurrent keep-alive clients → sidecar A (outbound) → sidecar B (inbound) → app.
    const meshDispatcher = new Agent({ connections: CLIENTS });
    cleanups.push(() => meshDispatcher.close());
    const clients = Array.from({ length: CLIENTS }, async (_, i) => {
      for (let n = 0; !stop; n++) {
        const at = phase;
        try {
          const res = await request(`http://127.0.0.1:${ports.aOut}/c${i}/${n}`, {
            headers: { host: 'b.mesh' },
            dispatcher: meshDispatcher,
            ...(n % 10 === 0 ? { method: 'POST', body: 'x'.repeat(2048) } : {}),
          });
          const text = await res.body.text();
          results.push({ phase: at, status: res.statusCode === 200 && text === 'ok' ? 200 : res.statusCode });
        } catch (error) {
          results.push({ phase: at, status: (error as Error).message });
        }
        // Paced (≤ 50 req/s per client, ≤ 600 in all): steady load without starving the tests running beside it.
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    });
    const okIn = (p: Phase) => results.filter((r) => r.phase === p && r.status === 200).length;
    const failedIn = (p: Phase) => results.filter((r) => r.phase === p && r.status !== 200);
    await waitFor('traffic to flow', () => okIn('one root') >= 50 || undefined, 20_000);

    // Step 1: a second root is published; every sidecar learns it from its next renewal (or from its bundle
    // refresh, whose first run falls at a random point of its 5 minutes). Activation may come once both hold it.
    phase = 'published';
    await cli('ca', 'rotate', '--root', '--dir', caDir);
    expect(pemBlocks(readFileSync(join(caDir, 'bundle.pem'), 'utf8'))).toHaveLength(2);
    const bothTrustTwoRoots = Promise.all([holdsBundleOf(a, 2), holdsBundleOf(b, 2)]);
    // Awaited below; a failure of a wait in between must not leave its rejection unhandled meanwhile.
    bothTrustTwoRoots.catch(() => undefined);

    // Meanwhile, a peer that will not move: an SVID issued offline under the old root, trusting both roots, keeping
    // one keep-alive connection to B busy.
    const legacyPrefix = join(dir, 'legacy');
    await cli('ca', 'issue', '--id', ID_LEGACY, '--out', legacyPrefix, '--dir', caDir, '--ttl', '1h');
    const legacyDispatcher = new Agent({
      connections: 1,
      connect: {
        cert: readFileSync(`${legacyPrefix}.crt`, 'utf8'),
        key: readFileSync(`${legacyPrefix}.key`, 'utf8'),
        ca: readFileSync(join(caDir, 'bundle.pem'), 'utf8'),
        checkServerIdentity: () => undefined,
      },
    });
    cleanups.push(() => legacyDispatcher.destroy());
    const legacy: { phase: Phase; status: number | string }[] = [];
    const legacyLoop = (async () => {
      for (let n = 0; !stop; n++) {
        const at = phase;
        try {
          const res = await request(`https://127.0.0.1:${ports.bIn}/legacy/${n}`, { dispatcher: legacyDispatcher });
          await res.body.text();
          legacy.push({ phase: at, status: res.statusCode });
        } catch (error) {
          legacy.push({ phase: at, status: (error as Error).message });
        }
        await new Promise((resolve) => setTimeout(resolve, 100)); // paced on purpose: steady load, as above
      }
    })();
    await waitFor('the legacy peer to be served', () => legacy.some((r) => r.status === 200) || undefined, 10_000);
    await bothTrustTwoRoots;
    for (const sidecar of [a, b]) expect(sidecar.logs().some(bundleWith(2))).toBe(true);

    // Step 2: the new root signs from now on; a renewal each puts both sidecars on it. Their SVIDs are read off
    // their listeners (a renewal already under way may still bring one of the old root).
    phase = 'activated';
    await cli('ca', 'rotate', '--root', '--activate', '--dir', caDir);
    const newIntermediate = new X509Certificate(readFileSync(join(caDir, 'intermediate.crt')));
    const legacyIdentity = {
      cert: readFileSync(`${legacyPrefix}.crt`, 'utf8'),
      key: readFileSync(`${legacyPrefix}.key`, 'utf8'),
      ca: readFileSync(join(caDir, 'bundle.pem'), 'utf8'),
    };
    for (const port of [ports.aIn, ports.bIn]) {
      await waitFor(
        'an SVID under the new root',
        async () => (await servedSvid(port, legacyIdentity))?.verify(newIntermediate.publicKey) || undefined,
        40_000,
      );
    }
    expect(failedIn('one root')).toEqual([]);
    expect(failedIn('published')).toEqual([]);
    expect(failedIn('activated')).toEqual([]);
    expect(legacy.filter((r) => r.status !== 200)).toEqual([]);
    const overlapOk = okIn('one root') + okIn('published') + okIn('activated');

    // Step 3: retire the old root (--force: the legacy peer's SVID under it is still valid — that is the point).
    // Counted from here: the probes above end their handshakes cleanly, but only the legacy peer's may count below.
    const handshakeFailuresBefore = await scrapeMetric(ports.bAdmin, 'meshauth_tls_handshake_failures_total');
    phase = 'retired';
    await cli('ca', 'rotate', '--root', '--retire', '--force', '--dir', caDir);
    expect(pemBlocks(readFileSync(join(caDir, 'bundle.pem'), 'utf8'))).toHaveLength(1);

    // A takes the one-root bundle from its next renewal, while B cuts the legacy peer's live connection as soon as it
    // holds that bundle: counted and logged once.
    const aTrustsOneRoot = holdsBundleOf(a, 1);
    aTrustsOneRoot.catch(() => undefined); // awaited below, as above
    await waitFor(
      'B to cut the old-root connection',
      async () =>
        (await scrapeMetric(ports.bAdmin, 'meshauth_connections_rejected_total', 'reason="root_removed"')) >= 1 ||
        undefined,
      40_000,
    );
    const cutAt = legacy.length;
    const firstRefused = await waitFor(
      'the legacy peer to be refused',
      () => {
        const at = legacy.findIndex((r, i) => i >= cutAt && r.status !== 200);
        return at === -1 ? undefined : at;
      },
      10_000,
    );
    const cuts = b.logs().filter((l) => l.msg === CUT_MESSAGE);
    expect(cuts).toHaveLength(1);
    expect(cuts[0]).toMatchObject({ level: 'warn', direction: 'inbound' });
    expect(cuts[0]?.connections).toBeGreaterThanOrEqual(1);
    await aTrustsOneRoot;
    // Its new handshakes fail: B no longer trusts the old root (counted as a TLS handshake failure).
    await waitFor(
      'a refused handshake of the legacy peer',
      async () =>
        (await scrapeMetric(ports.bAdmin, 'meshauth_tls_handshake_failures_total')) > handshakeFailuresBefore ||
        undefined,
      10_000,
    );
    // From its first refusal on, nothing of the legacy peer gets through (three more attempts at least).
    await waitFor('three more legacy attempts', () => legacy.length >= firstRefused + 4 || undefined, 10_000);
    expect(legacy.slice(firstRefused).filter((r) => r.status === 200)).toEqual([]);

    // The mesh goes on: the sidecars are on the new root, with no restart; the latest requests all succeed.
    const afterCut = results.length;
    await waitFor('more mesh traffic after the removal', () => results.length >= afterCut + 200 || undefined, 20_000);
    stop = true;
    await Promise.all([...clients, legacyLoop]);
    expect(results.slice(afterCut).filter((r) => r.status !== 200)).toEqual([]);
    for (const proc of [ca, a, b]) expect(proc.alive()).toBe(true);
    for (const sidecar of [a, b]) {
      expect(sidecar.logs().some(bundleWith(1))).toBe(true);
      expect(sidecar.logs().filter((l) => l.level === 'error' || l.level === 'fatal')).toEqual([]);
    }
    console.log(
      JSON.stringify({
        overlapOk,
        overlapFailed: 0,
        retiredOk: okIn('retired'),
        retiredFailed: failedIn('retired').length,
        retiredFailures: [...new Set(failedIn('retired').map((r) => r.status))],
        legacyCut: await scrapeMetric(ports.bAdmin, 'meshauth_connections_rejected_total', 'reason="root_removed"'),
      }),
    );

    for (const proc of [a, b, ca]) {
      proc.child.kill('SIGTERM');
      expect((await proc.exited).code).toBe(0);
    }
  }, 180_000);
});
