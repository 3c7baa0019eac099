// `cert request` with a join token the CA refuses (used, expired or unknown) said only "credential rejected": it now
// says why a new token is needed, in the words the sidecar logs for the same refusal (one text for both).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOIN_TOKEN_SINGLE_USE } from '../../src/agent/ca-client.js';
import { assertBuilt, meshauth, type RunningCli, serveCa } from '../helpers/meshauth-cli.js';

const ID = 'spiffe://example.org/ns/shop/sa/batch';
let cwd: string;
let serve: RunningCli;
let url: string;

beforeAll(async () => {
  assertBuilt(['src/cli', 'src/ca', 'src/agent']);
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-used-token-'));
  expect((await meshauth(['ca', 'init', '--trust-domain', 'example.org'], { cwd })).code).toBe(0);
  ({ serve, url } = await serveCa(cwd));
});
afterAll(async () => {
  await serve?.stop();
  if (cwd !== undefined) rmSync(cwd, { recursive: true, force: true });
});

const request = (tokenFile: string, out: string) =>
  meshauth(
    ['cert', 'request', '--ca-url', url, '--bundle', 'certs/bundle.pem', '--token-file', tokenFile, '--out', out],
    {
      cwd,
    },
  );

describe('cert request with a join token the CA refuses', () => {
  it('fail/the token used a second time → exit 2 MESHAUTH_ERR_CA_UNAUTHENTICATED, single-use, a new token', async () => {
    const created = await meshauth(['ca', 'token', 'create', '--id', ID], { cwd });
    expect(created.code, created.stderr).toBe(0);
    writeFileSync(join(cwd, 'join.token'), created.stdout, { mode: 0o600 });
    const first = await request('join.token', 'first');
    expect(first.code, first.stderr).toBe(0);

    const second = await request('join.token', 'second');
    expect(second.code, second.stderr).toBe(2);
    expect(second.stdout).toBe('');
    expect(second.stderr).toBe(
      `meshauth: CA ${url}/v1/svid answered 401 MESHAUTH_ERR_CA_UNAUTHENTICATED: credential rejected: the CA ` +
        `refused the join token (unknown, expired or used): ${JOIN_TOKEN_SINGLE_USE}; create a new one with ` +
        '`meshauth ca token create --id <spiffe-id>` [MESHAUTH_ERR_CA_UNAUTHENTICATED]\n',
    );
  });

  it('fail/a token the CA never issued → the same hint', async () => {
    writeFileSync(join(cwd, 'unknown.token'), `${'A'.repeat(43)}\n`, { mode: 0o600 });
    const result = await request('unknown.token', 'unknown');
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain(JOIN_TOKEN_SINGLE_USE);
    expect(result.stderr).toContain('[MESHAUTH_ERR_CA_UNAUTHENTICATED]');
  });
});
