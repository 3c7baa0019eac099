// The sidecar's agent reads `ca.token` and `ca.bundle` at each bootstrap: a file it cannot read is logged with the
// setting that named it, as every other configured file is, and a join token file that group or others may read
// is warned about once (whoever reads it first can bootstrap as this workload), without refusing it.
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { type RunningSidecar, startSidecar } from '../../src/sidecar/index.js';
import { Metrics } from '../../src/telemetry/index.js';
import { type LogLines, logLines } from '../helpers/log-lines.js';
import { waitFor } from '../helpers/wait.js';
import { CaHarness, type Cleanup, runCleanups, TRUST_DOMAIN } from './agent-harness.js';

const cleanups: Cleanup[] = [];
afterEach(() => runCleanups(cleanups));

interface Files {
  readonly ca: CaHarness;
  readonly tokenFile: string;
  readonly bundleFile: string;
}

/** A CA, and a directory where the test places (or leaves out) the sidecar's token and bundle files. */
async function setUp(): Promise<Files> {
  const ca = await CaHarness.start(60_000, cleanups);
  const dir = mkdtempSync(join(tmpdir(), 'meshauth-agent-files-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return { ca, tokenFile: join(dir, 'token'), bundleFile: join(dir, 'bundle.pem') };
}

async function startWith({ ca, tokenFile, bundleFile }: Files, log: LogLines): Promise<RunningSidecar> {
  const config = sidecarConfigFromObject(
    {
      trustDomain: TRUST_DOMAIN.name,
      ca: { url: ca.url, bundle: bundleFile, token: tokenFile },
      inbound: { listen: '127.0.0.1:0', app: '127.0.0.1:1' },
      outbound: { listen: '127.0.0.1:0' },
      admin: { listen: '127.0.0.1:0' },
    },
    'agent-files.yaml',
  );
  const sidecar = await startSidecar(config, { logger: log.logger, metrics: new Metrics() });
  cleanups.push(() => sidecar.close(0));
  return sidecar;
}

function failedBootstrap(log: LogLines): Promise<Record<string, unknown>> {
  return waitFor('a failed bootstrap logged', () => log.find({ component: 'agent', mode: 'bootstrap' })[0], 10_000);
}

const TOKEN_READABLE = { component: 'agent', event: 'token_file_readable' };

describe('sidecar agent input files', () => {
  it('fail/ca.token missing → the bootstrap error names ca.token and the path', async () => {
    const files = await setUp();
    copyFileSync(files.ca.bundleFile, files.bundleFile);
    const log = logLines('sidecar');
    await startWith(files, log);
    const line = await failedBootstrap(log);
    expect(line).toMatchObject({ level: 'error', code: 'MESHAUTH_ERR_FILE_UNREADABLE', reason: 'token_unreadable' });
    expect(line.error).toBe(`ca.token: token file ${files.tokenFile}: cannot be read (ENOENT)`);
  }, 30_000);

  it('fail/ca.bundle missing → the bootstrap error names ca.bundle and the path', async () => {
    const files = await setUp();
    writeFileSync(files.tokenFile, `${await files.ca.token()}\n`, { mode: 0o600 });
    const log = logLines('sidecar');
    await startWith(files, log);
    const line = await failedBootstrap(log);
    expect(line).toMatchObject({
      level: 'error',
      code: 'MESHAUTH_ERR_FILE_UNREADABLE',
      reason: 'trust_bundle_unreadable',
    });
    expect(line.error).toBe(`ca.bundle: trust bundle file ${files.bundleFile}: cannot be read (ENOENT)`);
  }, 30_000);

  it('fail/a join token file readable by group and others → one warn line naming the file, ca.token and the mode', async () => {
    const files = await setUp();
    copyFileSync(files.ca.bundleFile, files.bundleFile);
    writeFileSync(files.tokenFile, `${await files.ca.token()}\n`);
    chmodSync(files.tokenFile, 0o644); // whatever the umask made of it
    const log = logLines('sidecar');
    const sidecar = await startWith(files, log);
    await waitFor('the SVID', () => sidecar.ready(), 10_000);
    expect(log.find(TOKEN_READABLE)).toEqual([
      expect.objectContaining({ level: 'warn', tokenFile: files.tokenFile, setting: 'ca.token', mode: '0644' }),
    ]);
  }, 30_000);

  it('ok/a join token file only its owner may read → no warning', async () => {
    const files = await setUp();
    copyFileSync(files.ca.bundleFile, files.bundleFile);
    writeFileSync(files.tokenFile, `${await files.ca.token()}\n`);
    chmodSync(files.tokenFile, 0o600);
    const log = logLines('sidecar');
    const sidecar = await startWith(files, log);
    await waitFor('the SVID', () => sidecar.ready(), 10_000);
    expect(log.find(TOKEN_READABLE)).toEqual([]);
  }, 30_000);

  it('ok/a service-account token (a JWT, mode 0644 as the kubelet projects it) → no warning', async () => {
    const files = await setUp();
    copyFileSync(files.ca.bundleFile, files.bundleFile);
    // Shaped like a projected token; this CA takes no service-account tokens, so the bootstrap is refused.
    writeFileSync(files.tokenFile, 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl\n');
    chmodSync(files.tokenFile, 0o644);
    const log = logLines('sidecar');
    await startWith(files, log);
    await failedBootstrap(log);
    expect(log.find(TOKEN_READABLE)).toEqual([]);
  }, 30_000);
});
