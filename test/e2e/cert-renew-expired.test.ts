// `cert renew` and `cert token` authenticate to the CA with --cert. One outside its validity window is refused before
// the CA is dialled, naming the file, when and what to do: the CA refused it with "credential rejected" alone (its
// log knew `client_cert_expired`), and the user was left to guess that an expired pair can never renew itself.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueOffline } from '../../src/ca/index.js';
import { assertBuilt, meshauth, type RunningCli, serveCa } from '../helpers/meshauth-cli.js';

const HOUR = 3_600_000;
let cwd: string;
let serve: RunningCli;
let url: string;

/** A pair from the CA of `cwd/certs`, issued as if the clock read now + `shiftMs` (10 min lifetime). */
async function pairIssuedAt(name: string, shiftMs: number): Promise<{ notBefore: Date; notAfter: Date }> {
  const svid = await issueOffline({
    dir: join(cwd, 'certs'),
    id: `spiffe://example.org/ns/shop/sa/${name}`,
    ttlMs: 600_000,
    now: new Date(Date.now() + shiftMs),
  });
  writeFileSync(join(cwd, `${name}.crt`), svid.certChainPem);
  writeFileSync(join(cwd, `${name}.key`), svid.privateKeyPem, { mode: 0o600 });
  return { notBefore: svid.leaf.notBefore, notAfter: svid.leaf.notAfter };
}

beforeAll(async () => {
  assertBuilt(['src/cli', 'src/ca', 'src/agent']);
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-renew-expired-'));
  expect((await meshauth(['ca', 'init', '--trust-domain', 'example.org'], { cwd })).code).toBe(0);
  ({ serve, url } = await serveCa(cwd));
});
afterAll(async () => {
  await serve?.stop();
  if (cwd !== undefined) rmSync(cwd, { recursive: true, force: true });
});

const TOKEN_ARGS = ['--audience', 'https://api.example.com'];
const args = (command: 'renew' | 'token', pair: string) => [
  'cert',
  command,
  '--ca-url',
  url,
  '--bundle',
  'certs/bundle.pem',
  '--cert',
  `${pair}.crt`,
  '--key',
  `${pair}.key`,
  ...(command === 'token' ? TOKEN_ARGS : []),
];

const WAY_OUT =
  'get a new SVID with `meshauth cert request` (a new join token from `meshauth ca token create`) or `meshauth ca issue`';

describe('cert renew / cert token with a certificate outside its validity window', () => {
  it.each([
    ['renew', 'renewal authenticates to the CA with the current certificate, so an expired one cannot renew'],
    ['token', 'the CA authenticates a token request with this certificate, so an expired one cannot get a token'],
  ] as const)(
    'fail/cert %s with an expired certificate → exit 2 MESHAUTH_ERR_SVID_EXPIRED, the way out',
    async (command, why) => {
      const pair = `expired-${command}`;
      const { notAfter } = await pairIssuedAt(pair, -2 * HOUR);
      const before = readFileSync(join(cwd, `${pair}.crt`), 'utf8');
      const result = await meshauth(args(command, pair), { cwd });
      expect(result.code, result.stderr).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(
        new RegExp(
          `^meshauth: ${pair}\\.crt expired at ${notAfter.toISOString()} \\(1h \\d+m ago\\): ${literal(why)}; ` +
            `${literal(WAY_OUT)} \\[MESHAUTH_ERR_SVID_EXPIRED\\]\\n$`,
        ),
      );
      expect(readFileSync(join(cwd, `${pair}.crt`), 'utf8')).toBe(before);
    },
  );

  it.each(['renew', 'token'] as const)(
    'fail/cert %s with a certificate not yet valid → exit 2 MESHAUTH_ERR_SVID_NOT_YET_VALID, check the clocks',
    async (command) => {
      const pair = `future-${command}`;
      const { notBefore } = await pairIssuedAt(pair, 2 * HOUR);
      const result = await meshauth(args(command, pair), { cwd });
      expect(result.code, result.stderr).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(
        new RegExp(
          `^meshauth: ${pair}\\.crt is not valid before ${notBefore.toISOString()} \\(1h \\d+m from now by this ` +
            "host's clock, [^)]+\\), so the CA refuses it until then: check the clocks of this host and of the CA " +
            '\\[MESHAUTH_ERR_SVID_NOT_YET_VALID\\]\\n$',
        ),
      );
    },
  );

  it('ok/a certificate inside its window still renews', async () => {
    await pairIssuedAt('current', 0);
    const result = await meshauth(args('renew', 'current'), { cwd });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('issued spiffe://example.org/ns/shop/sa/current');
  });
});

function literal(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
