// The CA's private key files others may read or write are told about, one warn line each naming the file, its mode
// and the fix, and still used: the CA starts and signs. Modes are those of the files the paths lead to, so a Secret
// mounted the way the kubelet does (symlinks into `..data`) is judged by its real files: the shipped 0440 mount of
// root's files with the pod's fsGroup says nothing, a 0444 one (no defaultMode) says how to mount it.
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initCa, startCaServer } from '../../src/ca/index.js';
import { unprotectedKeyFiles, warnUnprotectedKeyFiles } from '../../src/ca/unprotected-key-files.js';
import { Metrics } from '../../src/telemetry/index.js';
import { logLines } from '../helpers/log-lines.js';
import { mountSecret } from '../helpers/secret-mount.js';

const parent = mkdtempSync(join(tmpdir(), 'meshauth-ca-key-modes-'));
afterAll(() => rmSync(parent, { recursive: true, force: true }));

let made: string;
beforeAll(async () => {
  made = join(parent, 'made');
  await initCa({ dir: made, trustDomain: 'example.org' });
});

let count = 0;
/** A fresh copy of the CA (as `ca init` left it: keys 0600) in a directory of its own. */
async function caDir(): Promise<string> {
  count += 1;
  const dir = join(parent, `ca-${count}`);
  await initCa({ dir, trustDomain: 'example.org' });
  return dir;
}

const UNPROTECTED = { event: 'ca_key_file_unprotected' };

describe('ca serve: private key files others may read', () => {
  it('ok/as ca init wrote them (0600): no line', async () => {
    const log = logLines();
    await warnUnprotectedKeyFiles(made, log.logger);
    expect(log.find(UNPROTECTED)).toEqual([]);
  });

  it('fail/intermediate.key 0644 → one warn line naming it, its mode and chmod 600; the CA still starts', async () => {
    const dir = await caDir();
    chmodSync(join(dir, 'intermediate.key'), 0o644);
    const log = logLines();
    await warnUnprotectedKeyFiles(dir, log.logger);
    expect(log.find(UNPROTECTED)).toEqual([
      expect.objectContaining({
        level: 'warn',
        file: join(dir, 'intermediate.key'),
        mode: '0644',
        fix: `chmod 600 ${join(dir, 'intermediate.key')}`,
      }),
    ]);
    const server = await startCaServer({
      dir,
      listen: '127.0.0.1:0',
      svidTtlMs: 600_000,
      logger: log.logger,
      metrics: new Metrics(),
    });
    await server.close();
  });

  it('fail/root.key 0640, jwt.key 0606 (its group may read one, everyone write the other) → a line for each', async () => {
    const dir = await caDir();
    chmodSync(join(dir, 'root.key'), 0o640);
    chmodSync(join(dir, 'jwt.key'), 0o606);
    const found = await unprotectedKeyFiles(dir);
    expect(found.map(({ file, mode }) => [file, mode])).toEqual([
      [join(dir, 'root.key'), '0640'],
      [join(dir, 'jwt.key'), '0606'],
    ]);
  });

  describe('a Secret volume: the files its symlinks lead to, root-owned, the CA in the pod fsGroup', () => {
    const mounted = (mode: number): string => {
      count += 1;
      const dir = join(parent, `secret-${count}`);
      const data = Object.fromEntries(
        ['root.crt', 'intermediate.crt', 'intermediate.key', 'bundle.pem', 'jwt.key'].map((name) => [
          name,
          readFileSync(join(made, name)).toString('base64'),
        ]),
      );
      mountSecret(dir, data);
      for (const key of ['intermediate.key', 'jwt.key']) {
        // The kubelet's files are root's; the CA runs as another user, here the uid below.
        chownSync(join(dir, '..data', key), 0, 0);
        chmodSync(join(dir, '..data', key), mode);
      }
      return dir;
    };
    /** The uid the shipped image runs the CA as (runAsUser). */
    const CA_UID = 65532;

    it.runIf(process.getuid?.() === 0)('ok/defaultMode 0440 (deploy/base/ca.yaml) → no line', async () => {
      const dir = mounted(0o440);
      expect(await unprotectedKeyFiles(dir, CA_UID)).toEqual([]);
    });

    it.runIf(process.getuid?.() === 0)('fail/defaultMode 0444 → a line per key saying how to mount it', async () => {
      const dir = mounted(0o444);
      const found = await unprotectedKeyFiles(dir, CA_UID);
      expect(found.map(({ file, mode }) => [file, mode])).toEqual([
        [join(dir, 'intermediate.key'), '0444'],
        [join(dir, 'jwt.key'), '0444'],
      ]);
      expect(found[0]?.fix).toMatch(/defaultMode: 0440 with the pod fsGroup, as deploy\/base\/ca\.yaml mounts it/);
    });
  });
});
