// `meshauth sidecar --config FILE` with a bad config exits 2 and names the file, the key and the expectation.
// Runs the built CLI (`npm run build` first); skipped with a reason when dist/ is missing.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCommand } from '../helpers/sidecar-harness.js';

const CLI = join(import.meta.dirname, '../../dist/src/cli/main.js');
const BUILT = existsSync(CLI);
if (!BUILT) console.warn('sidecar-config e2e: dist/src/cli/main.js missing (run npm run build), skipping');

const dir = mkdtempSync(join(tmpdir(), 'meshauth-e2e-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const BASE =
  'trustDomain: example.org\nca: { url: "https://127.0.0.1:1", bundle: /nonexistent, token: /nonexistent }\n';

describe.skipIf(!BUILT)('meshauth sidecar with a bad config', () => {
  const cases: Array<[string, string, RegExp]> = [
    [
      'fail/unknown key',
      `${BASE}inbound: { listn: 127.0.0.1:0 }\n`,
      /inbound\.listn \(did you mean listen\?\): unknown key; allowed here: listen, app/,
    ],
    ['fail/wrong type', `${BASE}inbound: { tls12: 1 }\n`, /inbound\.tls12: expected true or false, not the number 1/],
    ['fail/bad value', `${BASE}admin: { listen: everywhere }\n`, /admin\.listen: expected host:port/],
  ];
  it.each(cases)('%s → exit 2 naming file and key', async (_name, text, expected) => {
    const file = join(dir, 'sidecar.yaml');
    writeFileSync(file, text);
    const result = await runCommand(process.execPath, [CLI, 'sidecar', '--config', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(file);
    expect(result.stderr).toMatch(expected);
    expect(result.stderr).toContain('MESHAUTH_ERR_CONFIG_INVALID');
  });

  it('fail/a bad environment override names the variable', async () => {
    const file = join(dir, 'ok.yaml');
    writeFileSync(file, BASE);
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [CLI, 'sidecar', '--config', file], {
        env: { ...process.env, MESHAUTH_ADMIN_LISTEN: 'nope' },
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      child.on('close', (code) => resolve({ code, stderr }));
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/admin\.listen \(from MESHAUTH_ADMIN_LISTEN\)/);
  });
});
