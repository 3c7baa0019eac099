// A throw-away CA directory for CA tests: `initCa` in a temp dir, removed by the returned cleanup.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initCa } from '../../src/ca/index.js';

export async function makeCaDir(trustDomain = 'example.org'): Promise<{ dir: string; cleanup: () => void }> {
  const root = mkdtempSync(join(tmpdir(), 'meshauth-ca-'));
  const dir = join(root, 'certs');
  await initCa({ dir, trustDomain });
  return { dir, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}
