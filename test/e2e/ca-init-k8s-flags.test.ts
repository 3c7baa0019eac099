// `ca init` flags that go with --k8s-secret, given without it, were refused with one sentence naming all three
// (`--namespace, --bundle-namespace and --out go with --k8s-secret`), flags the user never typed among them. The
// refusal now names the flags given and what to do instead. With --k8s-secret, the CA directory is --out (default
// meshauth-ca) or --dir: an explicit `--dir certs` was taken for the default and the CA went to meshauth-ca, and
// --dir and --out naming two directories had --dir ignored without a word.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, meshauth } from '../helpers/meshauth-cli.js';

let cwd: string;

beforeAll(() => {
  assertBuilt(['src/cli', 'src/ca']);
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-init-k8s-flags-'));
});
afterAll(() => {
  if (cwd !== undefined) rmSync(cwd, { recursive: true, force: true });
});

const init = (...args: string[]) => meshauth(['ca', 'init', '--trust-domain', 'example.org', ...args], { cwd });

describe('ca init: the flags of --k8s-secret', () => {
  it.each([
    [
      ['--dir', 'ns-only', '--namespace', 'meshauth'],
      '--namespace goes with --k8s-secret, which was not given: add --k8s-secret NAME to write the Kubernetes ' +
        'manifests too, or leave --namespace out',
    ],
    [
      ['--namespace', 'meshauth', '--bundle-namespace', 'shop'],
      '--namespace and --bundle-namespace go with --k8s-secret, which was not given: add --k8s-secret NAME to write ' +
        'the Kubernetes manifests too, or leave them out',
    ],
    [
      ['--out', 'my-ca'],
      '--out goes with --k8s-secret, which was not given: add --k8s-secret NAME to write the Kubernetes manifests ' +
        'too, or leave --out out and name the CA directory with --dir (--dir my-ca)',
    ],
  ])('fail/ca init %j without --k8s-secret → exit 2 naming only the flags given', async (args, message) => {
    const result = await init(...args);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(`meshauth: ${message} [MESHAUTH_ERR_USAGE]\n`);
    expect(existsSync(join(cwd, 'ns-only'))).toBe(false);
  });

  it('fail/--k8s-secret with --dir and --out naming two directories → exit 2 naming both, nothing written', async () => {
    const result = await init('--k8s-secret', 'meshauth-ca', '--namespace', 'meshauth', '--dir', 'one', '--out', 'two');
    expect(result.code, result.stderr).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      'meshauth: --dir one and --out two both name the CA directory ca init --k8s-secret writes: give one of them ' +
        '[MESHAUTH_ERR_USAGE]\n',
    );
    expect(existsSync(join(cwd, 'one'))).toBe(false);
    expect(existsSync(join(cwd, 'two'))).toBe(false);
  });

  it('ok/--k8s-secret with an explicit --dir certs writes the CA there', async () => {
    const result = await init('--k8s-secret', 'meshauth-ca', '--namespace', 'meshauth', '--dir', 'certs');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^meshauth CA for trust domain example\.org created in certs\n/);
    expect(existsSync(join(cwd, 'certs/secrets.yaml'))).toBe(true);
    expect(existsSync(join(cwd, 'meshauth-ca'))).toBe(false);
  });
});
