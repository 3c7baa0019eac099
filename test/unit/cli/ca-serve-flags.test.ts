// `ca serve` flags that mean something only beside another flag are refused as usage errors when typed without it:
// the Kubernetes flags without --k8s-issuer, --intermediate-ttl without --auto-rotate-intermediate. Before, the ones
// with a default (--k8s-audience, --k8s-api-server, --k8s-token-file, --intermediate-ttl) were read and dropped: the CA
// started with no Kubernetes bootstrap, or kept the intermediate's 30 days, without a word. Also `ca serve
// --log-level`, as sidecar, gateway and webhook take it. The directory holds no CA, so a command that passes the
// flag checks ends at MESHAUTH_ERR_CA_NOT_INITIALIZED with nothing started.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildProgram } from '../../../src/cli/program.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'meshauth-ca-serve-flags-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** What `meshauth ca serve …flags` on the empty directory ends with. */
function serve(...flags: string[]): Promise<unknown> {
  return buildProgram()
    .parseAsync(['ca', 'serve', '--dir', dir, '--listen', '127.0.0.1:0', '--workers', '0', ...flags], {
      from: 'user',
    })
    .then(
      () => expect.fail('ca serve started'),
      (error: unknown) => error,
    );
}

const usage = (message: string) => ({ code: 'MESHAUTH_ERR_USAGE', message });
const passedTheFlagChecks = { code: 'MESHAUTH_ERR_CA_NOT_INITIALIZED' };

describe('ca serve flags that need another flag', () => {
  it.each([
    [['--k8s-audience', 'mesh-prod'], '--k8s-audience needs --k8s-issuer'],
    [['--k8s-api-server', 'https://10.0.0.1'], '--k8s-api-server needs --k8s-issuer'],
    [['--k8s-token-file', '/var/run/token'], '--k8s-token-file needs --k8s-issuer'],
    // Given with its default value, it is still given.
    [['--k8s-audience', 'meshauth'], '--k8s-audience needs --k8s-issuer'],
    [['--k8s-jwks', 'jwks.json'], '--k8s-jwks needs --k8s-issuer'],
    [['--k8s-token-review'], '--k8s-token-review needs --k8s-issuer'],
    [['--k8s-renew-with-token'], '--k8s-renew-with-token needs --k8s-issuer'],
  ])('fail/%j without --k8s-issuer → %s', async (flags, message) => {
    expect(await serve(...flags)).toMatchObject(usage(message));
  });

  it('fail/--intermediate-ttl without --auto-rotate-intermediate → usage, naming both', async () => {
    expect(await serve('--intermediate-ttl', '7d')).toMatchObject(
      usage(
        '--intermediate-ttl goes with --auto-rotate-intermediate (it sets the lifetime of the intermediates ca ' +
          'serve mints; `ca rotate --intermediate` makes 30-day ones)',
      ),
    );
  });

  it.each([
    [[]],
    [['--auto-rotate-intermediate', '--intermediate-ttl', '7d']],
    [['--auto-rotate-intermediate']],
    [['--k8s-issuer', 'https://issuer.example', '--k8s-audience', 'mesh-prod', '--k8s-token-file', '/nonexistent/t']],
    [['--k8s-issuer', 'https://issuer.example', '--k8s-api-server', 'https://10.0.0.1']],
  ])('ok/%j passes the flag checks', async (flags) => {
    expect(await serve(...flags)).toMatchObject(passedTheFlagChecks);
  });
});

describe('ca serve --log-level', () => {
  it('ok/--log-level debug is taken', async () => {
    expect(await serve('--log-level', 'debug')).toMatchObject(passedTheFlagChecks);
  });

  it('fail/--log-level loud → usage, naming the levels', async () => {
    expect(await serve('--log-level', 'loud')).toMatchObject({
      code: 'MESHAUTH_ERR_USAGE',
      reason: 'log_level',
      message: expect.stringContaining('expected one of'),
    });
  });
});
