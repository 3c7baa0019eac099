// `jwksUri: file:///…`: end-user keys from a local JWKS file, re-read when the file is replaced — by a rename over
// it, and by the symlink swap Kubernetes does for a mounted ConfigMap — with the last good key set kept while the
// new content is invalid (one metric increment and one log line per bad version). Real files, real sidecars.
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EndUserVerifier } from '../../src/authn/index.js';
import { JwksFileError, readJwksFile } from '../../src/authn/jwks-file.js';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { gatewayConfigFromObject } from '../../src/gateway/index.js';
import { Metrics } from '../../src/telemetry/index.js';
import { endUserToken, jwksText, type SigningKey, signingKey, tokenRejection } from '../helpers/end-user-keys.js';
import { captureLogger, metricValue, waitFor } from '../helpers/fault-harness.js';
import { startApp, startTestSidecar, type TestApp, type TestSidecar } from '../helpers/sidecar-harness.js';
import { ENDLESS_DEVICE, fifoIn } from '../helpers/special-files.js';
import { TestCa } from '../helpers/test-ca.js';

const ISSUER = 'https://idp.example.test';
const AUDIENCE = 'shop';

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

let dir: string;
let key1: SigningKey;
let key2: SigningKey;
let key3: SigningKey;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'meshauth-jwks-file-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  [key1, key2, key3] = await Promise.all([signingKey('k1'), signingKey('k2'), signingKey('k3')]);
});

let renames = 0;
/** What a careful operator (or a config-management tool) does: write a temporary file, rename it over the old one. */
function replaceByRename(path: string, text: string): void {
  const temporary = `${path}.tmp-${++renames}`;
  writeFileSync(temporary, text);
  renameSync(temporary, path);
}

/**
 * A ConfigMap volume as the kubelet lays it out: `jwks.json` → `..data/jwks.json`, `..data` → `..<version>`.
 * An update writes a new version directory, points a new link at it and renames the link over `..data`.
 */
function configMapVolume(root: string, text: string): { file: string; update(text: string): void } {
  mkdirSync(root);
  let version = 0;
  const writeVersion = (content: string): string => {
    const name = `..2026_12_01_00_00_0${++version}`;
    mkdirSync(join(root, name));
    writeFileSync(join(root, name, 'jwks.json'), content);
    return name;
  };
  let current = writeVersion(text);
  symlinkSync(current, join(root, '..data'));
  symlinkSync(join('..data', 'jwks.json'), join(root, 'jwks.json'));
  return {
    file: join(root, 'jwks.json'),
    update(content: string) {
      const next = writeVersion(content);
      symlinkSync(next, join(root, '..data_tmp'));
      renameSync(join(root, '..data_tmp'), join(root, '..data'));
      rmSync(join(root, current), { recursive: true });
      current = next;
    },
  };
}

function fileVerifier(file: string, tunables: Record<string, number> = {}) {
  const metrics = new Metrics();
  const log = captureLogger('sidecar');
  const verifier = new EndUserVerifier({
    config: {
      required: true,
      issuers: [{ issuer: ISSUER, audiences: [AUDIENCE], algorithms: ['ES256'], jwksUri: pathToFileURL(file).href }],
      vouchers: [],
      claims: [],
    },
    tunables: { jwksFileCheckIntervalMs: 20, ...tunables },
    metrics,
    logger: log.logger,
  });
  cleanups.push(() => verifier.close());
  const loads = async (result: string): Promise<number> => {
    const text = await metrics.registry.getSingleMetricAsString('meshauth_enduser_jwks_refreshes_total');
    const line = text.split('\n').find((l) => l.includes(`source="file"`) && l.includes(`result="${result}"`));
    return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
  };
  const warnings = () => log.records().filter((r) => r.level === 'warn' || r.level === 40);
  return { verifier, metrics, loads, warnings, cache: verifier.jwksCache(ISSUER) };
}

const passes = (verifier: EndUserVerifier, token: string) => async () =>
  (await tokenRejection(verifier, token)) === undefined || undefined;

describe('a JWKS file replaced by rename', () => {
  it('ok/new keys count after the rename; fail/a removed key stops counting; the keys are read only when changed', async () => {
    const file = join(dir, 'renamed.json');
    writeFileSync(file, jwksText(key1));
    const { verifier, loads, cache } = fileVerifier(file);
    verifier.start();
    const token1 = await endUserToken(key1, ISSUER, AUDIENCE);
    const token2 = await endUserToken(key2, ISSUER, AUDIENCE);
    await waitFor('key 1 to be loaded', passes(verifier, token1));
    expect(await tokenRejection(verifier, token2)).toBe('unknown_kid');

    replaceByRename(file, jwksText(key2));
    await waitFor('key 2 to be loaded from the renamed file', passes(verifier, token2));
    expect(await tokenRejection(verifier, token1)).toBe('unknown_kid');
    expect(await loads('ok')).toBe(2);

    // Unchanged file: checks go on (stat only), but nothing is read again.
    const reads = cache?.stats.fetches;
    for (let i = 0; i < 3; i++) expect(await cache?.refresh()).toBe(true);
    expect(cache?.stats.fetches).toBe(reads);
    expect(await loads('ok')).toBe(2);
  });

  it('fail/invalid new content keeps the last good keys: one metric increment and one log line per bad version', async () => {
    const file = join(dir, 'invalid.json');
    writeFileSync(file, jwksText(key1));
    const { verifier, loads, warnings, cache } = fileVerifier(file);
    verifier.start();
    const token1 = await endUserToken(key1, ISSUER, AUDIENCE);
    await waitFor('key 1 to be loaded', passes(verifier, token1));

    const bad: [string, string][] = [
      ['invalid_json', '{"keys": [ {"kty": "EC", '],
      ['no_usable_key', '{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "hs"}]}'],
      ['invalid_json', '\u00ff\u00fe not utf-8 or json'],
      ['too_large', `{"keys": [], "pad": "${'x'.repeat(300 * 1024)}"}`],
    ];
    for (const [index, [failure, text]] of bad.entries()) {
      replaceByRename(file, text);
      await waitFor(`the ${failure} version to be counted`, async () => (await loads(failure)) >= 1 || undefined);
      // More checks of the same bad version: neither counted nor logged again; key 1 still verifies.
      for (let i = 0; i < 3; i++) expect(await cache?.refresh()).toBe(false);
      expect(await tokenRejection(verifier, token1)).toBeUndefined();
      const lines = warnings().filter((w) => w.msg === 'JWKS refresh failed; keeping the last good key set');
      expect(lines).toHaveLength(index + 1);
      expect(lines.at(-1)).toMatchObject({ failure, source: 'file', issuer: ISSUER, cachedKeys: 1 });
    }
    expect(await loads('invalid_json')).toBe(2);

    // Removed: counted and logged once as unreadable, key 1 kept; then a good file again.
    rmSync(file);
    await waitFor('the missing file to be counted', async () => (await loads('unreadable')) === 1 || undefined);
    for (let i = 0; i < 3; i++) expect(await cache?.refresh()).toBe(false);
    expect(await loads('unreadable')).toBe(1);
    expect(await tokenRejection(verifier, token1)).toBeUndefined();
    writeFileSync(file, jwksText(key1, key3));
    const token3 = await endUserToken(key3, ISSUER, AUDIENCE);
    await waitFor('key 3 to be loaded', passes(verifier, token3));
    expect(await tokenRejection(verifier, token1)).toBeUndefined();
  });

  // Opening a FIFO without a writer used to block a thread-pool thread (one per check); a device was read on and on.
  it.each([
    ['a FIFO with no writer', () => fifoIn(dir, 'jwks.fifo')],
    ['a device', () => ENDLESS_DEVICE],
  ])('fail/%s at the JWKS path → unreadable at once', async (_name, make) => {
    const error = await readJwksFile(make(), 256 * 1024).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(JwksFileError);
    expect(error).toMatchObject({ failure: 'unreadable', message: expect.stringContaining('not a regular file') });
  });

  it('fail/no file at start: jwks_unavailable, no crash; ok/the file appears and its keys count', async () => {
    const file = join(dir, 'late.json');
    const { verifier, loads } = fileVerifier(file);
    verifier.start();
    const token1 = await endUserToken(key1, ISSUER, AUDIENCE);
    await waitFor('the missing file to be counted', async () => (await loads('unreadable')) === 1 || undefined);
    expect(await tokenRejection(verifier, token1)).toBe('jwks_unavailable');
    replaceByRename(file, jwksText(key1));
    await waitFor('key 1 to be loaded', passes(verifier, token1));
  });

  it('fail/a file unchanged but invalid for longer than max-stale fails closed', async () => {
    const file = join(dir, 'stale.json');
    writeFileSync(file, jwksText(key1));
    let clock = Date.now();
    const metrics = new Metrics();
    const verifier = new EndUserVerifier({
      config: {
        required: true,
        issuers: [{ issuer: ISSUER, audiences: [AUDIENCE], algorithms: ['ES256'], jwksUri: pathToFileURL(file).href }],
        vouchers: [],
        claims: [],
      },
      tunables: { jwksFileCheckIntervalMs: 0, jwksMaxStaleMs: 60_000, clockSkewSeconds: 0 },
      metrics,
      now: () => clock,
    });
    cleanups.push(() => verifier.close());
    const cache = verifier.jwksCache(ISSUER);
    expect(await cache?.refresh()).toBe(true);
    const token1 = await endUserToken(key1, ISSUER, AUDIENCE, 'alice', 3600);
    // An unchanged good file is confirmed by each check: max-stale never passes.
    clock += 50_000;
    expect(await cache?.refresh()).toBe(true);
    clock += 50_000;
    expect(await tokenRejection(verifier, token1)).toBeUndefined();
    // Now invalid: the keys last confirmed 50 s ago stay usable until 60 s have passed since then.
    replaceByRename(file, 'garbage');
    expect(await cache?.refresh()).toBe(false);
    clock += 5_000;
    expect(await tokenRejection(verifier, token1)).toBeUndefined();
    clock += 10_000;
    expect(await tokenRejection(verifier, token1)).toBe('jwks_unavailable');
  });
});

describe('a JWKS ConfigMap volume updated by symlink swap, through a real sidecar', () => {
  let ca: TestCa;
  let app: TestApp;
  let sidecar: TestSidecar;
  let volume: ReturnType<typeof configMapVolume>;
  let client: Agent;
  const log = captureLogger('sidecar');

  beforeAll(async () => {
    ca = await TestCa.create('example.org');
    app = await startApp();
    cleanups.push(() => app.close());
    volume = configMapVolume(join(dir, 'configmap'), jwksText(key1));
    const config = sidecarConfigFromObject(
      {
        trustDomain: 'example.org',
        ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent/bundle.pem', token: '/nonexistent/token' },
        inbound: {
          listen: '127.0.0.1:0',
          app: `127.0.0.1:${app.port}`,
          endUser: {
            required: true,
            issuers: [
              {
                issuer: ISSUER,
                audiences: [AUDIENCE],
                algorithms: ['ES256'],
                jwksUri: pathToFileURL(volume.file).href,
              },
            ],
          },
        },
        outbound: { listen: '127.0.0.1:0' },
        admin: { listen: '127.0.0.1:0' },
      },
      'jwks-file-test',
    );
    sidecar = await startTestSidecar(ca, ca.idFor('/ns/shop/sa/orders'), config, { logger: log.logger });
    cleanups.push(() => sidecar.sidecar.close(0));
    const caller = await ca.issue({ id: ca.idFor('/ns/shop/sa/web') });
    client = new Agent({
      connect: { cert: caller.chainPem, key: caller.keyPem, ca: ca.rootPem, checkServerIdentity: () => undefined },
    });
    cleanups.push(() => client.close());
  });

  async function call(token: string): Promise<{ status: number; code?: string }> {
    const response = await request(`https://127.0.0.1:${sidecar.sidecar.inboundPort}/orders`, {
      dispatcher: client,
      headers: { authorization: `Bearer ${token}` },
    });
    const text = await response.body.text();
    return { status: response.statusCode, ...(response.statusCode === 200 ? {} : { code: JSON.parse(text).code }) };
  }

  it('ok/the swapped version’s key counts within the check interval; fail/a broken version keeps the keys, one line', async () => {
    const token1 = await endUserToken(key1, ISSUER, AUDIENCE);
    const token2 = await endUserToken(key2, ISSUER, AUDIENCE);
    await waitFor('key 1 to be accepted', async () => (await call(token1)).status === 200 || undefined);
    expect(await call(token2)).toEqual({ status: 401, code: 'MESHAUTH_ERR_TOKEN_INVALID' });

    volume.update(jwksText(key1, key2));
    await waitFor('key 2 to be accepted after the swap', async () => (await call(token2)).status === 200 || undefined);
    expect((await call(token1)).status).toBe(200);

    // A broken version: the sidecar keeps both keys, counts it, logs it once, and stays up.
    volume.update('{"keys": "not a list"');
    await waitFor(
      'the broken version to be counted',
      async () =>
        (await metricValue(sidecar, 'meshauth_enduser_jwks_refreshes_total', 'result="invalid_json"')) === 1 ||
        undefined,
    );
    expect((await call(token2)).status).toBe(200);
    const failed = log.records().filter((r) => r.msg === 'JWKS refresh failed; keeping the last good key set');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ component: 'authn', source: 'file', failure: 'invalid_json', cachedKeys: 2 });

    // Key 1 retired by the next version: its tokens stop counting, key 2's go on.
    volume.update(jwksText(key2));
    await waitFor('key 1 to be refused', async () => (await call(token1)).status === 401 || undefined);
    expect((await call(token2)).status).toBe(200);
    expect(await metricValue(sidecar, 'meshauth_enduser_jwks_refreshes_total', 'result="ok"')).toBe(3);
    expect(sidecar.sidecar.ready()).toBe(true);
  });
});

describe('the gateway’s apiIssuers take the same file form', () => {
  it('ok/a gateway config with jwksUri file:/// verifies tokens of the file’s keys', async () => {
    const file = join(dir, 'gateway-jwks.json');
    writeFileSync(file, jwksText(key1));
    const config = gatewayConfigFromObject(
      {
        trustDomain: 'example.org',
        ca: { url: 'https://127.0.0.1:1', bundle: 'bundle.pem', token: 'token' },
        listen: '127.0.0.1:0',
        tls: { cert: 'gateway.crt', key: 'gateway.key' },
        apiIssuers: [
          { issuer: ISSUER, audiences: [AUDIENCE], algorithms: ['ES256'], jwksUri: pathToFileURL(file).href },
        ],
        routes: [
          {
            name: 'api',
            match: { host: 'api.example.com', pathPrefix: '/' },
            to: { address: '127.0.0.1:1', ids: ['spiffe://example.org/ns/shop/sa/api'] },
          },
        ],
      },
      'gateway.yaml',
    );
    // The gateway builds its API-token verifier from exactly these issuers (src/gateway/gateway.ts).
    const verifier = new EndUserVerifier({
      config: { required: false, issuers: config.apiIssuers, vouchers: [], claims: [] },
      tunables: { jwksFileCheckIntervalMs: 20 },
    });
    cleanups.push(() => verifier.close());
    verifier.start();
    await waitFor('key 1 from the file', passes(verifier, await endUserToken(key1, ISSUER, AUDIENCE)));
  });
});
