// `cert request` spent its single-use join token at the CA before finding that --out could not be written: the
// refusal came after the CA call, and a rerun with a good --out got "401 token used". --out is now made, locked and
// proved writable first: the refusal is the same, and the token still bootstraps.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, meshauth, type RunningCli, serveCa } from '../helpers/meshauth-cli.js';

const ID = 'spiffe://example.org/ns/shop/sa/batch';
let cwd: string;
let serve: RunningCli;
let url: string;
const immutable: string[] = [];

beforeAll(async () => {
  assertBuilt(['src/cli', 'src/ca', 'src/agent']);
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-unwritable-out-'));
  expect((await meshauth(['ca', 'init', '--trust-domain', 'example.org'], { cwd })).code).toBe(0);
  ({ serve, url } = await serveCa(cwd));
});
afterAll(async () => {
  await serve?.stop();
  for (const dir of immutable) chattr('-i', dir);
  if (cwd !== undefined) rmSync(cwd, { recursive: true, force: true });
});

/** True when `chattr` ran: the file system may not take the immutable flag (tmpfs, overlay), or the tool is missing. */
function chattr(flag: string, path: string): boolean {
  try {
    execFileSync('chattr', [flag, path], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A fresh join token for ID, in a file of cwd. */
async function tokenFile(name: string): Promise<string> {
  const created = await meshauth(['ca', 'token', 'create', '--id', ID], { cwd });
  expect(created.code, created.stderr).toBe(0);
  writeFileSync(join(cwd, name), created.stdout, { mode: 0o600 });
  return name;
}

const request = (token: string, out: string) =>
  meshauth(['cert', 'request', '--ca-url', url, '--bundle', 'certs/bundle.pem', '--token-file', token, '--out', out], {
    cwd,
  });

/** The refusal, then the same token bootstrapping a good --out: it was not spent by the refused run. */
async function refusedThenBootstrapped(token: string, badOut: string, refusal: string, good: string): Promise<void> {
  const refused = await request(token, badOut);
  expect(refused.code, refused.stderr).toBe(2);
  expect(refused.stdout).toBe('');
  expect(refused.stderr).toBe(`meshauth: ${refusal} [MESHAUTH_ERR_FILE_UNWRITABLE]\n`);

  const again = await request(token, good);
  expect(again.code, again.stderr).toBe(0);
  expect(again.stdout).toContain(`issued ${ID}`);
  expect(existsSync(join(cwd, `${good}.key`))).toBe(true);
  expect(existsSync(join(cwd, `${good}.crt`))).toBe(true);
}

describe('cert request with an --out that cannot be written', () => {
  it('fail/--out under a regular file (ENOTDIR) → refused, the token is not spent', async () => {
    const token = await tokenFile('notdir.token');
    writeFileSync(join(cwd, 'plain-file'), 'not a directory\n');
    await refusedThenBootstrapped(
      token,
      'plain-file/sub/web',
      'cannot write plain-file/sub: ENOTDIR (mkdir)',
      'notdir-good',
    );
  });

  it('fail/--out in an immutable directory (chattr +i, obeyed by root) → refused, the token is not spent', async (context) => {
    const dir = join(cwd, 'frozen');
    mkdirSync(dir);
    if (!chattr('+i', dir)) context.skip();
    immutable.push(dir);
    const token = await tokenFile('immutable.token');
    await refusedThenBootstrapped(token, 'frozen/web', 'cannot write frozen/web.key: EPERM (write)', 'immutable-good');
  });
});
