// `--log-level` is something the user typed: an unknown value is a usage error (exit 2, [MESHAUTH_ERR_USAGE], the
// allowed values named). It used to reach pino, whose bare Error made the CLI exit 1 as for a runtime failure, with
// "default level:bogus must be included in custom levels" and no stable code.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, meshauth } from '../helpers/meshauth-cli.js';

let cwd: string;
beforeAll(() => {
  assertBuilt(['src/telemetry', 'src/cli']);
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-log-level-'));
  // Not a valid sidecar config on purpose: a run that gets past the log level stops at once with exit 2 (config).
  writeFileSync(join(cwd, 'sidecar.yaml'), 'trustDomain: example.org\n');
});
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

describe('--log-level', () => {
  for (const command of [
    ['sidecar', '--config', 'sidecar.yaml'],
    ['gateway', '--config', 'sidecar.yaml'],
    ['webhook', '--listen', '127.0.0.1:0', '--tls-cert', 'none.crt', '--tls-key', 'none.key'],
  ]) {
    it(`fail/meshauth ${command[0]} --log-level bogus → exit 2, usage`, async () => {
      const result = await meshauth([...command, '--log-level', 'bogus'], { cwd });
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toContain('unknown log level "bogus": expected one of trace, debug, info, warn, error');
      expect(result.stderr).toContain('[MESHAUTH_ERR_USAGE]');
    });
  }

  it('ok/a known level in any case is accepted (the run then stops at the config, not the level)', async () => {
    const result = await meshauth(['sidecar', '--config', 'sidecar.yaml', '--log-level', 'DEBUG'], { cwd });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('[MESHAUTH_ERR_CONFIG_INVALID]');
    expect(result.stderr).not.toContain('log level');
  });
});
