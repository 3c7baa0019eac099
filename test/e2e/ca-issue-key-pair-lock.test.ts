// `ca issue --out P` writes P.key and P.crt under the pair's lock (P.key.lock), as `cert renew` and `cert request`
// do: it used to write without it, so a renewal of the same pair meanwhile could interleave its two renames with
// these and leave a key beside another issuance's chain. Here the test holds the lock as a renewal would: the issue
// says it waits, writes nothing until the lock is let go, then writes a matching pair.
import { spawn } from 'node:child_process';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withKeyPairLock } from '../../src/cli/key-pair-lock.js';
import { assertBuilt, MAIN, meshauth } from '../helpers/meshauth-cli.js';
import { waitFor } from '../helpers/wait.js';

const ID = 'spiffe://example.org/ns/shop/sa/web';
let cwd: string;

beforeAll(async () => {
  assertBuilt(['src/cli', 'src/ca']);
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-issue-lock-'));
  expect((await meshauth(['ca', 'init', '--trust-domain', 'example.org'], { cwd })).code).toBe(0);
  const first = await meshauth(['ca', 'issue', '--id', ID, '--out', 'wl/web'], { cwd });
  expect(first.code, first.stderr).toBe(0);
});
afterAll(() => {
  if (cwd !== undefined) rmSync(cwd, { recursive: true, force: true });
});

const read = (name: string) => readFileSync(join(cwd, name), 'utf8');

function matching(keyPem: string, chainPem: string): boolean {
  const leafKey = new X509Certificate(chainPem).publicKey.export({ type: 'spki', format: 'der' });
  const key = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
  return leafKey.equals(key);
}

describe('ca issue --out and the key pair lock', () => {
  it('ok/waits for the holder of P.key.lock, writes nothing meanwhile, then a matching pair', async () => {
    const before = { key: read('wl/web.key'), crt: read('wl/web.crt') };
    let stderr = '';
    let code: number | null | undefined;
    const issued = await withKeyPairLock(join(cwd, 'wl/web.key'), async () => {
      const child = spawn(process.execPath, [MAIN, 'ca', 'issue', '--id', ID, '--out', 'wl/web'], {
        cwd,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        stderr += chunk;
      });
      const exited = new Promise<void>((resolve) =>
        child.once('exit', (exitCode) => {
          code = exitCode;
          resolve();
        }),
      );
      // Ended or waiting, whichever comes first: an issue that ignores the lock ends, having written.
      await waitFor(
        'ca issue waiting for the lock, or its end',
        () => code !== undefined || stderr.includes('waiting'),
        15_000,
      );
      expect(code, stderr).toBeUndefined();
      expect(stderr).toContain('meshauth: waiting for another process writing wl/web.key and its certificate');
      expect({ key: read('wl/web.key'), crt: read('wl/web.crt') }).toEqual(before);
      // Wrapped: a promise returned bare would be awaited under the lock, which the issue waits for.
      return { exited };
    });
    await issued.exited;
    expect(code, stderr).toBe(0);
    const after = { key: read('wl/web.key'), crt: read('wl/web.crt') };
    expect(after.key).not.toBe(before.key);
    expect(matching(after.key, after.crt)).toBe(true);
  });
});
