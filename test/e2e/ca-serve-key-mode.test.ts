// `meshauth ca serve` over a CA whose intermediate.key others may read (0644: copied with the wrong mode, a
// Secret mounted without defaultMode): one JSON warn line on stderr naming the file, its mode and `chmod 600 …`,
// then it serves as before. It used to load the key without a word.
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, meshauth, type RunningCli, serveCa } from '../helpers/meshauth-cli.js';

let cwd: string;
let serve: RunningCli | undefined;
beforeAll(() => {
  assertBuilt(['src/cli', 'src/ca']);
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-serve-key-mode-'));
});
afterAll(async () => {
  await serve?.stop();
  rmSync(cwd, { recursive: true, force: true });
});

describe('ca serve with an intermediate.key others may read', () => {
  it('fail/0644 → one warn line naming the file, its mode and the fix; the CA still serves', async () => {
    const init = await meshauth(['ca', 'init', '--trust-domain', 'example.org'], { cwd });
    expect(init.code, init.stderr).toBe(0);
    chmodSync(join(cwd, 'certs', 'intermediate.key'), 0o644);
    const started = await serveCa(cwd);
    serve = started.serve;
    const lines = started.serve
      .stderr()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.filter((line) => line.event === 'ca_key_file_unprotected')).toEqual([
      expect.objectContaining({
        level: 'warn',
        file: 'certs/intermediate.key',
        mode: '0644',
        fix: 'chmod 600 certs/intermediate.key',
      }),
    ]);
    const agent = new Agent({ connect: { ca: readFileSync(join(cwd, 'certs', 'bundle.pem'), 'utf8') } });
    try {
      const response = await request(`${started.url}/v1/bundle`, { dispatcher: agent });
      expect(response.statusCode).toBe(200);
      await response.body.dump();
    } finally {
      await agent.close();
    }
  });
});
