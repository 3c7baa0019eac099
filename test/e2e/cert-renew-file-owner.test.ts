// `cert renew` (and `cert request` over existing files) run as root for an app that runs as its own user: the new
// key and chain keep the owner, group and mode of the files they replace. They used to become root's (the key 0600),
// so the app could no longer read its own key at its next reload.
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, meshauth, type RunningCli, serveCa } from '../helpers/meshauth-cli.js';

const ID = 'spiffe://example.org/ns/shop/sa/web';
const APP_UID = 4242;
const APP_GID = 4343;
const asRoot = process.getuid?.() === 0;

let cwd: string;
let serve: RunningCli;
let url: string;

async function request(out: string): Promise<void> {
  const token = await meshauth(['ca', 'token', 'create', '--id', ID], { cwd });
  expect(token.code, token.stderr).toBe(0);
  const args = ['cert', 'request', '--ca-url', url, '--bundle', 'certs/bundle.pem', '--token', token.stdout.trim()];
  const result = await meshauth([...args, '--out', out], { cwd });
  expect(result.code, result.stderr).toBe(0);
}

/** Hands the pair to the app's user as an operator would: key 0640 for the app's group, chain read-only. */
function giveToApp(prefix: string): void {
  for (const [file, mode] of [
    [`${prefix}.key`, 0o640],
    [`${prefix}.crt`, 0o444],
  ] as const) {
    chownSync(join(cwd, file), APP_UID, APP_GID);
    chmodSync(join(cwd, file), mode);
  }
}

function ownership(file: string): { uid: number; gid: number; mode: number } {
  const stats = statSync(join(cwd, file));
  return { uid: stats.uid, gid: stats.gid, mode: stats.mode & 0o777 };
}

beforeAll(async () => {
  if (!asRoot) return;
  assertBuilt(['src/cli', 'src/ca', 'src/agent']);
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-file-owner-'));
  expect((await meshauth(['ca', 'init', '--trust-domain', 'example.org'], { cwd })).code).toBe(0);
  ({ serve, url } = await serveCa(cwd));
});
afterAll(async () => {
  await serve?.stop();
  if (cwd !== undefined) rmSync(cwd, { recursive: true, force: true });
});

describe.skipIf(!asRoot)('files replaced by the CLI run as root keep their owner, group and mode', () => {
  it("ok/cert renew: the new key and chain are still the app user's, key 0640, chain 0444", async () => {
    await request('renewed');
    giveToApp('renewed');
    const oldKey = readFileSync(join(cwd, 'renewed.key'), 'utf8');
    const renew = await meshauth(
      ['cert', 'renew', '--ca-url', url, '--bundle', 'certs/bundle.pem', '--cert', 'renewed.crt'].concat([
        '--key',
        'renewed.key',
      ]),
      { cwd },
    );
    expect(renew.code, renew.stderr).toBe(0);
    expect(readFileSync(join(cwd, 'renewed.key'), 'utf8')).not.toBe(oldKey);
    expect(ownership('renewed.key')).toEqual({ uid: APP_UID, gid: APP_GID, mode: 0o640 });
    expect(ownership('renewed.crt')).toEqual({ uid: APP_UID, gid: APP_GID, mode: 0o444 });
  });

  it('ok/cert request over existing files: the same', async () => {
    await request('requested');
    giveToApp('requested');
    await request('requested');
    expect(ownership('requested.key')).toEqual({ uid: APP_UID, gid: APP_GID, mode: 0o640 });
    expect(ownership('requested.crt')).toEqual({ uid: APP_UID, gid: APP_GID, mode: 0o444 });
  });

  it("ok/new files: key 0600 and chain 0644, root's", async () => {
    await request('fresh');
    expect(ownership('fresh.key')).toEqual({ uid: 0, gid: 0, mode: 0o600 });
    expect(ownership('fresh.crt')).toEqual({ uid: 0, gid: 0, mode: 0o644 });
  });
});
