// `cert renew` and `cert token` during a root rotation, after `--root --activate` and before `--root --retire`: the CA
// still trusts the previous root, so a certificate issued under it renews, whatever --bundle the command was given,
// as long as the CA's own certificate chains to it. A --bundle holding the new root alone (the active root.crt) was
// refused by the CLI's own check before the CA was asked, though the CA would have renewed it.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, meshauth, meshauthSteps, type RunningCli, serveCa } from '../helpers/meshauth-cli.js';

const WEB = 'spiffe://example.org/ns/shop/sa/web';
let cwd: string;
let serve: RunningCli;
let url: string;

beforeAll(async () => {
  assertBuilt(['src/cli', 'src/ca', 'src/agent']);
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-renew-new-root-'));
  // Each step's commands side by side; four steps of CLI starts on a busy machine outlast the default hook timeout.
  const steps = [
    [['ca', 'init', '--trust-domain', 'example.org', '--dir', 'certs']],
    [
      ['ca', 'issue', '--id', WEB, '--out', 'web'],
      ['ca', 'issue', '--id', WEB, '--out', 'api'],
    ],
    [['ca', 'rotate', '--root', '--dir', 'certs']],
    [['ca', 'rotate', '--root', '--activate', '--dir', 'certs']],
  ];
  await meshauthSteps(steps, cwd);
  // root.crt is now the new root; bundle.pem holds both until the old one is retired.
  copyFileSync(join(cwd, 'certs/root.crt'), join(cwd, 'new-root.pem'));
  ({ serve, url } = await serveCa(cwd));
}, 120_000);
afterAll(async () => {
  await serve?.stop();
  if (cwd !== undefined) rmSync(cwd, { recursive: true, force: true });
});

describe('cert renew and cert token under the previous root, with --bundle holding the new root alone', () => {
  it('ok/cert renew: the CA still trusts the previous root and renews', async () => {
    const result = await meshauth(
      ['cert', 'renew', '--ca-url', url, '--bundle', 'new-root.pem', '--cert', 'web.crt', '--key', 'web.key'],
      { cwd },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`issued ${WEB}`);
  });

  it('ok/cert token: the CA still trusts the previous root and gives a token', async () => {
    const result = await meshauth(
      [
        'cert',
        'token',
        '--ca-url',
        url,
        '--bundle',
        'new-root.pem',
        '--cert',
        'api.crt',
        '--key',
        'api.key',
        '--audience',
        'https://api.example.com',
      ],
      { cwd },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.split('.')).toHaveLength(3);
  });
});
