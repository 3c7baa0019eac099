// `ca serve --auto-rotate-intermediate` (CertificateWatch) when `meshauth ca rotate --intermediate` or another replica
// has just rotated: the running server's material is up to a second old (reloads are checked once a second), and the
// rotation it then starts must judge the intermediate on disk, not that material, or it replaces the fresh one at once.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CaAuthority } from '../../src/ca/authority.js';
import { CertificateWatch } from '../../src/ca/certificate-watch.js';
import { initCa, rotateIntermediate } from '../../src/ca/index.js';
import { parseCertificatesPem } from '../../src/pki/index.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';

let root: string;
const dir = () => join(root, 'ca');

beforeEach(async () => {
  root = mkdtempSync(join(tmpdir(), 'meshauth-auto-rotate-after-cli-'));
  await initCa({ dir: dir(), trustDomain: 'example.org' });
  // An intermediate past half its life: the server's next check starts a rotation.
  await rotateIntermediate(dir(), new Date(Date.now() - 120_000), 200_000);
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function serialOnDisk(): string | undefined {
  return parseCertificatesPem(readFileSync(join(dir(), 'intermediate.crt'), 'utf8'))[0]?.serialNumber;
}

describe('auto-rotation right after another process rotated', () => {
  it('ok/the intermediate `ca rotate` just wrote is kept: no second rotation', async () => {
    const logger = silentLogger();
    const authority = await CaAuthority.open(dir(), logger);
    await authority.refresh(); // the server's file check of this second: nothing changed yet
    const fresh = await rotateIntermediate(dir()); // `meshauth ca rotate --intermediate`, in the same second
    const metrics = new Metrics();
    const watch = new CertificateWatch({
      dir: dir(),
      authority,
      metrics,
      logger,
      now: () => new Date(),
      autoRotateTtlMs: 3_600_000,
    });
    watch.check();
    await watch.settle();
    expect(serialOnDisk()).toBe(fresh.serial);
    const rotations = await metrics.caIntermediateRotations.get();
    expect(rotations.values.find((v) => v.labels.result === 'success')?.value).toBe(0);
  });
});
