// A throw-away CA directory for CA tests: `initCa` in a temp dir, removed by the returned cleanup; and a CA server
// on 127.0.0.1 port 0 serving from one.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CaServer, type CaServerOptions, initCa, loadCaMaterial, startCaServer } from '../../src/ca/index.js';

export async function makeCaDir(trustDomain = 'example.org'): Promise<{ dir: string; cleanup: () => void }> {
  const root = mkdtempSync(join(tmpdir(), 'meshauth-ca-'));
  const dir = join(root, 'certs');
  await initCa({ dir, trustDomain });
  return { dir, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

export interface TestCaServer {
  /** The CA directory the server serves from (the `--dir` of CLI commands run against it). */
  readonly dir: string;
  readonly server: CaServer;
  /** The CA's trust bundle, PEM, for clients of the server. */
  readonly bundlePem: string;
  /** Closes the server, then removes the directory. */
  close(): Promise<void>;
}

/** A CA server on 127.0.0.1 port 0 over a fresh CA directory (makeCaDir) of example.org. */
export async function startCaInTempDir(options: Omit<CaServerOptions, 'dir' | 'listen'>): Promise<TestCaServer> {
  const ca = await makeCaDir();
  try {
    const server = await startCaServer({ ...options, dir: ca.dir, listen: '127.0.0.1:0' });
    return {
      dir: ca.dir,
      server,
      bundlePem: (await loadCaMaterial(ca.dir)).bundle.toPem(),
      close: async () => {
        await server.close();
        ca.cleanup();
      },
    };
  } catch (error) {
    ca.cleanup();
    throw error;
  }
}
