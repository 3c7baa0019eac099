// A sidecar or gateway whose `ca.bundle` is another CA's bundle.pem: its agent's error line names that file and the
// setting, as `meshauth cert` names its --bundle, so the operator knows which file to replace; OpenSSL's "unable to
// get local issuer certificate" alone read as a CA that is down.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { initCa } from '../../src/ca/index.js';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { gatewayConfigFromObject, startGateway } from '../../src/gateway/index.js';
import { startSidecar } from '../../src/sidecar/index.js';
import { Metrics } from '../../src/telemetry/index.js';
import { type LogLines, logLines } from '../helpers/log-lines.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';
import { CaHarness, type Cleanup, runCleanups, TRUST_DOMAIN } from './agent-harness.js';

const cleanups: Cleanup[] = [];
afterEach(() => runCleanups(cleanups));

interface Setup {
  readonly ca: CaHarness;
  readonly dir: string;
  /** Another CA's bundle.pem: a valid file of the same trust domain, just not this CA's. */
  readonly bundleFile: string;
  readonly tokenFile: string;
}

async function setUp(): Promise<Setup> {
  const ca = await CaHarness.start(60_000, cleanups);
  const dir = mkdtempSync(join(tmpdir(), 'meshauth-wrong-bundle-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  await initCa({ dir: join(dir, 'other-ca'), trustDomain: TRUST_DOMAIN });
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, `${await ca.token()}\n`, { mode: 0o600 });
  return { ca, dir, bundleFile: join(dir, 'other-ca', 'bundle.pem'), tokenFile };
}

/** The agent's first failed bootstrap, which must name the file and the setting. */
async function expectBundleNamed(log: LogLines, { ca, bundleFile }: Setup): Promise<void> {
  const [line] = await waitFor('a failed bootstrap logged', () => {
    const failed = log.find({ component: 'agent', mode: 'bootstrap', reason: 'tls' });
    return failed.length > 0 ? failed : undefined;
  });
  expect(line).toMatchObject({ level: 'error', code: 'MESHAUTH_ERR_CA_UNAVAILABLE' });
  expect(line?.error).toBe(
    `CA ${ca.url}/v1/svid failed TLS authentication: its certificate does not chain to any root in the trust ` +
      `bundle ${bundleFile} (ca.bundle) (UNABLE_TO_GET_ISSUER_CERT_LOCALLY: unable to get local issuer ` +
      'certificate): use the bundle.pem of the CA at this URL, or the URL of the CA that bundle is from',
  );
}

describe('agent with the wrong ca.bundle', () => {
  it('fail/sidecar, another CA’s bundle.pem → the bootstrap error names the file and ca.bundle', async () => {
    const setup = await setUp();
    const config = sidecarConfigFromObject(
      {
        trustDomain: TRUST_DOMAIN.name,
        ca: { url: setup.ca.url, bundle: setup.bundleFile, token: setup.tokenFile },
        inbound: { listen: '127.0.0.1:0', app: '127.0.0.1:1' },
        outbound: { listen: '127.0.0.1:0' },
        admin: { listen: '127.0.0.1:0' },
      },
      'wrong-bundle.yaml',
    );
    const log = logLines('sidecar');
    const sidecar = await startSidecar(config, { logger: log.logger, metrics: new Metrics() });
    cleanups.push(() => sidecar.close(0));
    await expectBundleNamed(log, setup);
    expect(sidecar.ready()).toBe(false);
  }, 30_000);

  it('fail/gateway, another CA’s bundle.pem → the bootstrap error names the file and ca.bundle', async () => {
    const setup = await setUp();
    const server = await (await TestCa.create()).issue({ ipAddresses: ['127.0.0.1'] });
    const cert = join(setup.dir, 'gateway.crt');
    const key = join(setup.dir, 'gateway.key');
    writeFileSync(cert, server.chainPem);
    writeFileSync(key, server.keyPem, { mode: 0o600 });
    const config = gatewayConfigFromObject(
      {
        trustDomain: TRUST_DOMAIN.name,
        ca: { url: setup.ca.url, bundle: setup.bundleFile, token: setup.tokenFile },
        listen: '127.0.0.1:0',
        tls: { cert, key },
        routes: [
          {
            name: 'web',
            match: { host: '127.0.0.1', pathPrefix: '/' },
            to: { address: '127.0.0.1:1', ids: [`spiffe://${TRUST_DOMAIN.name}/ns/shop/sa/web`] },
            login: 'none',
          },
        ],
        admin: { listen: '127.0.0.1:0' },
      },
      'wrong-bundle-gateway.yaml',
    );
    const log = logLines('gateway');
    const gateway = await startGateway(config, { logger: log.logger, metrics: new Metrics() });
    cleanups.push(() => gateway.close(0));
    await expectBundleNamed(log, setup);
    expect(gateway.ready()).toBe(false);
  }, 30_000);
});
