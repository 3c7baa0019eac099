// --auto-rotate-intermediate under load (TLS on 127.0.0.1): with 10-second intermediates the CA mints a new one at
// each half-life while many concurrent POST /v1/svid requests (service-account tokens, a new TLS connection each)
// keep coming; every request succeeds with a chain that validates against the unchanged bundle, the chains carry
// the new intermediates, the expiry gauge follows on the admin listener. And the 7-day expiry warning.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { exportJWK, generateKeyPair as generateJoseKeyPair, SignJWT } from 'jose';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as caClient from '../../src/agent/ca-client.js';
import {
  type CaServer,
  IdentityRateLimit,
  loadCaMaterial,
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
} from '../../src/pki/index.js';
import { Metrics } from '../../src/telemetry/index.js';
import { makeCaDir } from '../helpers/ca-dir.js';
import { logLines } from '../helpers/log-lines.js';
import { waitFor } from '../helpers/wait.js';

const TD = TrustDomain.parse('example.org');
const ISSUER = 'https://kubernetes.default.svc.cluster.local';
// The shortest `ca serve --intermediate-ttl` takes: a rotation every 5 s, each intermediate still valid for 5 s more
// while the next one is minted and loaded (the CA checks once a second).
const INTERMEDIATE_TTL_MS = 10_000;
const WORKERS = 8;
const ROTATIONS_WANTED = 2;
const DEADLINE_MS = 60_000;

let dir: string;
let cleanup: () => void;
let jwksFile: string;
let signingKey: CryptoKey;

beforeAll(async () => {
  ({ dir, cleanup } = await makeCaDir());
  const pair = await generateJoseKeyPair('ES256');
  signingKey = pair.privateKey;
  jwksFile = join(dir, '..', 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k', alg: 'ES256' }] }));
});
afterAll(() => cleanup?.());

function token(ns: string, sa: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    iss: ISSUER,
    aud: ['meshauth'],
    sub: `system:serviceaccount:${ns}:${sa}`,
    iat: now,
    nbf: now,
    exp: now + 3600,
    'kubernetes.io': { namespace: ns, serviceaccount: { name: sa, uid: 'u' }, pod: { name: `${sa}-0`, uid: 'p' } },
  })
    .setProtectedHeader({ alg: 'ES256', kid: 'k' })
    .sign(signingKey);
}

describe('--auto-rotate-intermediate', () => {
  it('ok/rotates at half-life under concurrent load with zero failed requests; chains carry the new intermediates', async () => {
    // Start from a short-lived intermediate minted 2 s ago: its half-life comes 3 s into the load, time enough for
    // responses signed by it first (the first one comes within a second), and no test time spent before that.
    await rotateIntermediate(dir, new Date(Date.now() - 2_000), INTERMEDIATE_TTL_MS);
    const bundle = (await loadCaMaterial(dir)).bundle;
    const bundlePem = bundle.toPem();
    const metrics = new Metrics();
    const log = logLines();
    const server: CaServer = await startCaServer({
      dir,
      listen: '127.0.0.1:0',
      adminListen: '127.0.0.1:0',
      svidTtlMs: 10 * 60_000,
      kubernetes: { issuer: ISSUER, jwks: jwksFile },
      autoRotateIntermediateTtlMs: INTERMEDIATE_TTL_MS,
      logger: log.logger,
      metrics,
      // Each worker renews its identity in a loop as fast as the CA signs, which no agent does: lifted here, the
      // per-identity limit has its own test (ca-identity-rate-limit).
      identityRateLimit: new IdentityRateLimit(1_000_000, 1_000_000),
    });
    const serials = new Set<string>();
    const failures: string[] = [];
    let succeeded = 0;
    const rotations = () => log.find({ event: 'intermediate_rotated' }).length;
    const started = Date.now();
    const lag = monitorEventLoopDelay({ resolution: 20 });
    lag.enable();
    // Load goes on until the last rotated intermediate has signed a response (or the deadline, which fails below).
    const done = () => {
      const rotated = log.find({ event: 'intermediate_rotated' });
      const last = rotated.at(-1)?.serial as string | undefined;
      return (
        (rotated.length >= ROTATIONS_WANTED && last !== undefined && serials.has(last)) ||
        Date.now() - started > DEADLINE_MS
      );
    };
    try {
      const worker = async (i: number) => {
        const jwt = await token('shop', `w${i}`);
        const csrPem = await createCsrPem(await generateKeyPair('p256'));
        while (!done()) {
          try {
            const response = await caClient.requestSvid(
              { caUrl: server.url, bundlePem, trustDomain: TD },
              { csrPem, token: jwt },
            );
            const chain = response.certChainPem.flatMap((pem) => parseCertificatesPem(pem));
            validateX509Svid(chain, TrustBundle.fromPem(TD, response.bundlePem.join('')), new Date());
            expect(response.bundlePem.join('')).toBe(bundle.toPemList().join(''));
            serials.add(chain[1]?.serialNumber ?? '');
            succeeded++;
          } catch (error) {
            failures.push(String(error));
          }
        }
      };
      await Promise.all(Array.from({ length: WORKERS }, (_, i) => worker(i)));
      lag.disable();
      console.log(
        `auto-rotation under load: ${succeeded} requests, ${failures.length} failed, ${rotations()} rotations, ` +
          `${serials.size} intermediates seen, event-loop delay p99 ${Math.round(lag.percentile(99) / 1e6)} ms`,
      );

      if (failures.length > 0 || process.env.SHOW_ROTATIONS) {
        console.log(failures.slice(0, 5).join('\n'));
        console.log(
          log.lines
            .filter((l) => String(l.event).match(/rotat|reload|serving/))
            .map(
              (l) =>
                `${l.time} ${l.event} ${l.serial ?? l.intermediateSerial ?? ''} ${l.previousSerial ?? ''} ${l.intermediateNotAfter ?? ''} ${l.durationMs ?? ''}`,
            )
            .join('\n'),
        );
      }
      expect(failures).toEqual([]);
      expect(rotations()).toBeGreaterThanOrEqual(ROTATIONS_WANTED);
      // Responses came from the first intermediate and from the ones rotated in.
      expect(serials.size).toBeGreaterThanOrEqual(ROTATIONS_WANTED + 1);
      expect(succeeded).toBeGreaterThan(WORKERS * ROTATIONS_WANTED);
      const { values } = await metrics.caIntermediateRotations.get();
      expect(values.find((v) => v.labels.result === 'success')?.value).toBe(rotations());
      // Exported from 0 so that the shipped alert's increase() sees the first failure.
      expect(values.find((v) => v.labels.result === 'failure')?.value).toBe(0);

      // The gauge on the admin listener follows the intermediate in use (set every second; rotation goes on).
      let gauge = '';
      let expected = '';
      const text = await waitFor(
        'the intermediate gauge to match the intermediate in use',
        async () => {
          const current = (await loadCaMaterial(dir)).issuer.certificate;
          expected = String(Math.floor(current.notAfter.getTime() / 1000));
          const metrics = await (await request(`${server.adminUrl}/metrics`)).body.text();
          gauge =
            /meshauth_ca_certificate_expiry_timestamp_seconds\{kind="intermediate"\} (\d+)/.exec(metrics)?.[1] ?? '';
          return gauge === expected ? metrics : undefined;
        },
        // Rotation goes on while the gauge is sampled each second: on a loaded machine a match can take a while.
        20_000,
        200,
      ).catch(() => ''); // the expectation below names both values
      expect(gauge).toBe(expected);
      expect(text).toMatch(/meshauth_ca_intermediate_rotations_total\{result="success"\} [2-9]/);
    } finally {
      await server.close();
    }
  }, 90_000);

  it('fail/without root.key in the directory → usage error naming the file', async () => {
    const { dir: other, cleanup: done } = await makeCaDir();
    const { rmSync } = await import('node:fs');
    rmSync(join(other, 'root.key'));
    try {
      const error = await startCaServer({
        dir: other,
        listen: '127.0.0.1:0',
        svidTtlMs: 60_000,
        autoRotateIntermediateTtlMs: INTERMEDIATE_TTL_MS,
        logger: logLines().logger,
        metrics: new Metrics(),
      }).then(
        async (s) => {
          await s.close();
          return undefined;
        },
        (e: unknown) => e as { code?: string; message?: string },
      );
      expect(error?.code).toBe('MESHAUTH_ERR_USAGE');
      expect(error?.message).toContain('root.key');
    } finally {
      done();
    }
  });
});

describe('expiry warning', () => {
  it('ok/one warning line per certificate from 7 days before expiry, none before', async () => {
    const { dir: other, cleanup: done } = await makeCaDir();
    const intermediate = (await loadCaMaterial(other)).issuer.certificate;
    try {
      for (const [daysLeft, warnings] of [
        [8, 0],
        [5, 1],
      ] as const) {
        const log = logLines();
        const server = await startCaServer({
          dir: other,
          listen: '127.0.0.1:0',
          svidTtlMs: 60_000,
          logger: log.logger,
          metrics: new Metrics(),
          now: () => new Date(intermediate.notAfter.getTime() - daysLeft * 86_400_000),
        });
        await server.close();
        const lines = log.find({ event: 'ca_certificate_expiring', kind: 'intermediate' });
        expect(lines).toHaveLength(warnings);
        if (warnings > 0) expect(String(lines[0]?.msg)).toContain('meshauth ca rotate --intermediate');
      }
    } finally {
      done();
    }
  });
});
