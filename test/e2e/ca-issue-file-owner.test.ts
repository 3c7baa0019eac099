// `ca issue --out` run as root over an app's existing key and chain (re-issuing them offline): the new files keep
// the owner, group and mode of the ones they replace, as `cert renew` does. They used to become root's (the key
// 0600), so the app could no longer read its own key at its next reload.
import { chmodSync, chownSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliCaDirPerTest } from '../helpers/ca-dir.js';
import { meshauth } from '../helpers/meshauth-cli.js';

const APP_UID = 4242;
const APP_GID = 4343;
const asRoot = process.getuid?.() === 0;

const ca = cliCaDirPerTest('meshauth-e2e-issue-owner-');

async function issue(): Promise<void> {
  const args = ['ca', 'issue', '--dir', ca.dir, '--id', 'spiffe://example.org/ns/shop/sa/web', '--out', 'app/web'];
  const result = await meshauth(args, { cwd: ca.cwd });
  expect(result.code, result.stderr).toBe(0);
}

function ownership(file: string): { uid: number; gid: number; mode: number } {
  const stats = statSync(join(ca.cwd, 'app', file));
  return { uid: stats.uid, gid: stats.gid, mode: stats.mode & 0o777 };
}

describe.skipIf(!asRoot)('ca issue run as root over existing files', () => {
  it("ok/the new key and chain are still the app user's, key 0640, chain 0444", async () => {
    await issue();
    for (const [file, mode] of [
      ['web.key', 0o640],
      ['web.crt', 0o444],
    ] as const) {
      chownSync(join(ca.cwd, 'app', file), APP_UID, APP_GID);
      chmodSync(join(ca.cwd, 'app', file), mode);
    }
    const oldKey = readFileSync(join(ca.cwd, 'app', 'web.key'), 'utf8');
    await issue();
    expect(readFileSync(join(ca.cwd, 'app', 'web.key'), 'utf8')).not.toBe(oldKey);
    expect(ownership('web.key')).toEqual({ uid: APP_UID, gid: APP_GID, mode: 0o640 });
    expect(ownership('web.crt')).toEqual({ uid: APP_UID, gid: APP_GID, mode: 0o444 });
  });

  it("ok/new files: key 0600 and chain 0644, root's", async () => {
    await issue();
    expect(ownership('web.key')).toEqual({ uid: 0, gid: 0, mode: 0o600 });
    expect(ownership('web.crt')).toEqual({ uid: 0, gid: 0, mode: 0o644 });
  });
});
