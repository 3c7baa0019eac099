// Inbound mTLS refusals with real clients (bad certificates, bad TLS): curl and openssl s_client are refused at the
// handshake (or right after it, for SPIFFE-rule failures), the app receives nothing, and
// meshauth_tls_handshake_failures_total counts a bounded reason.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TrustBundle } from '../../src/pki/index.js';
import {
  available,
  runCommand,
  startApp,
  startTestSidecar,
  type TestApp,
  type TestSidecar,
  testConfig,
} from '../helpers/sidecar-harness.js';
import { TestCa, writeSvidFiles } from '../helpers/test-ca.js';

const HAVE_CURL = available('curl');
const HAVE_OPENSSL = available('openssl');
if (!HAVE_CURL) console.warn('sidecar-tls: curl not on PATH, skipping the curl cases');
if (!HAVE_OPENSSL) console.warn('sidecar-tls: openssl not on PATH, skipping the s_client cases');

describe('inbound mTLS refusals', () => {
  let ca: TestCa;
  let otherTd: TestCa;
  let foreign: TestCa;
  let app: TestApp;
  let sidecar: TestSidecar;
  let dir: string;
  const files: Record<string, { cert: string; key: string }> = {};

  beforeAll(async () => {
    ca = await TestCa.create('example.org');
    otherTd = await TestCa.create('other.org'); // trusted root (federation-style), but not our trust domain
    foreign = await TestCa.create('example.org'); // same trust domain name, untrusted root
    dir = mkdtempSync(join(tmpdir(), 'meshauth-tls-'));
    app = await startApp();
    sidecar = await startTestSidecar(ca, ca.idFor('/ns/shop/sa/server'), testConfig({ appPort: app.port }), {
      bundle: new TrustBundle(ca.trustDomain, [ca.root, otherTd.root]),
    });
    const hour = 3600_000;
    const past = Date.now() - 3 * hour;
    files.good = writeSvidFiles(dir, 'good', await ca.issue({ id: ca.idFor('/ns/shop/sa/client') }));
    files.foreign = writeSvidFiles(dir, 'foreign', await foreign.issue({ id: ca.idFor('/ns/shop/sa/client') }));
    files.expired = writeSvidFiles(
      dir,
      'expired',
      await ca.issue({ notBefore: new Date(past), notAfter: new Date(past + hour) }),
    );
    files.notYet = writeSvidFiles(
      dir,
      'notyet',
      await ca.issue({ notBefore: new Date(Date.now() + hour), notAfter: new Date(Date.now() + 2 * hour) }),
    );
    files.otherTd = writeSvidFiles(dir, 'othertd', await otherTd.issue({ id: otherTd.idFor('/ns/shop/sa/client') }));
    files.twoUris = writeSvidFiles(
      dir,
      'twouris',
      await ca.issue({ defects: { uris: [ca.idFor('/ns/a/sa/x'), ca.idFor('/ns/a/sa/y')] } }),
    );
    files.noUri = writeSvidFiles(dir, 'nouri', await ca.issue({ defects: { uris: [], dnsNames: ['client.test'] } }));
    files.caLeaf = writeSvidFiles(dir, 'caleaf', await ca.issue({ defects: { isCa: true } }));
  });
  afterAll(async () => {
    await sidecar?.sidecar.close(0);
    await app?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const url = () => `https://127.0.0.1:${sidecar.sidecar.inboundPort}/hello`;
  const curl = (extra: string[]) => runCommand('curl', ['-sk', '--max-time', '5', ...extra, url()]);
  const certArgs = (name: string) => ['--cert', files[name]?.cert ?? '', '--key', files[name]?.key ?? ''];
  const failures = async (reason: string) => {
    const text = await sidecar.metrics.registry.getSingleMetricAsString('meshauth_tls_handshake_failures_total');
    const line = text.split('\n').find((l) => l.includes(`reason="${reason}"`));
    return line === undefined ? 0 : Number(line.split(' ').at(-1));
  };

  it.skipIf(!HAVE_CURL)('ok/curl with a valid SVID over h2 reaches the app', async () => {
    const result = await curl([...certArgs('good'), '-w', '%{http_version}', '-o', '/dev/null']);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('2');
    expect(app.seen.at(-1)?.headers['x-forwarded-client-cert']).toContain(`URI=${ca.idFor('/ns/shop/sa/client')}`);
  });

  const refused: Array<[string, string[] | undefined, string]> = [
    ['fail/no client certificate', undefined, 'no_client_cert'],
    ['fail/certificate from another CA', ['foreign'], 'unknown_ca'],
    ['fail/expired certificate', ['expired'], 'expired'],
    ['fail/not-yet-valid certificate', ['notYet'], 'not_yet_valid'],
    ['fail/another trust domain (trusted root)', ['otherTd'], 'trust_domain'],
    ['fail/two URI SANs', ['twoUris'], 'multiple_uri_san'],
    ['fail/no URI SAN', ['noUri'], 'no_uri_san'],
    ['fail/CA:TRUE leaf', ['caLeaf'], 'leaf_is_ca'],
  ];
  it.skipIf(!HAVE_CURL).each(refused)('%s → refused, app sees nothing', async (_name, cert, reason) => {
    const seenBefore = app.seen.length;
    const before = await failures(reason);
    const result = await curl(cert === undefined ? [] : certArgs(cert[0] as string));
    expect(result.code).not.toBe(0);
    expect(app.seen.length).toBe(seenBefore);
    await expect.poll(() => failures(reason), { timeout: 2_000, interval: 20 }).toBe(before + 1);
  });

  it.skipIf(!HAVE_OPENSSL)('fail/openssl s_client -tls1_2 is refused by default (TLS 1.3 only)', async () => {
    const before = await failures('protocol_version');
    const result = await runCommand('openssl', [
      's_client',
      '-connect',
      `127.0.0.1:${sidecar.sidecar.inboundPort}`,
      '-tls1_2',
      '-cert',
      files.good?.cert ?? '',
      '-cert_chain',
      files.good?.cert ?? '',
      '-key',
      files.good?.key ?? '',
      '-brief',
    ]);
    expect(result.code).not.toBe(0);
    expect(result.stderr + result.stdout).toMatch(/version|alert/i);
    await expect.poll(() => failures('protocol_version'), { timeout: 2_000, interval: 20 }).toBe(before + 1);
  });
});

describe('inbound with tls12: true', () => {
  let ca: TestCa;
  let app: TestApp;
  let sidecar: TestSidecar;
  let dir: string;
  let good: { cert: string; key: string };

  beforeAll(async () => {
    ca = await TestCa.create();
    dir = mkdtempSync(join(tmpdir(), 'meshauth-tls12-'));
    app = await startApp();
    sidecar = await startTestSidecar(ca, ca.idFor('/ns/a/sa/server'), testConfig({ appPort: app.port, tls12: true }));
    good = writeSvidFiles(dir, 'good', await ca.issue());
  });
  afterAll(async () => {
    await sidecar?.sidecar.close(0);
    await app?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const sClient = (args: string[]) =>
    runCommand('openssl', [
      's_client',
      '-connect',
      `127.0.0.1:${sidecar.sidecar.inboundPort}`,
      '-cert',
      good.cert,
      '-cert_chain',
      good.cert,
      '-key',
      good.key,
      '-brief',
      ...args,
    ]);

  it.skipIf(!HAVE_OPENSSL)('ok/TLS 1.2 with ECDHE-ECDSA-AES128-GCM-SHA256', async () => {
    const result = await sClient(['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256']);
    expect(result.stderr).toContain('TLSv1.2');
    expect(result.code).toBe(0);
  });

  it.skipIf(!HAVE_OPENSSL)('fail/TLS 1.2 with a CBC suite is refused', async () => {
    const result = await sClient(['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-SHA']);
    expect(result.code).not.toBe(0);
  });

  it.skipIf(!HAVE_OPENSSL)('fail/TLS 1.1 is refused', async () => {
    const result = await sClient(['-tls1_1']);
    expect(result.code).not.toBe(0);
  });
});
