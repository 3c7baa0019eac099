// `meshauth cert inspect … | head -1`: when the reader closes the pipe early the CLI exits quietly (no EPIPE stack
// trace on stderr, exit 0), like other Unix tools.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, MAIN, meshauth } from '../helpers/meshauth-cli.js';

let cwd: string;

beforeAll(async () => {
  assertBuilt(['src/cli/main.ts', 'src/cli/run.ts', 'src/cli/cert.ts']);
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-epipe-'));
  expect((await meshauth(['ca', 'init', '--trust-domain', 'example.org'], { cwd })).code).toBe(0);
  // Many certificates: one output line each, far more than a pipe buffer, so writes go on after `head` exits.
  const root = readFileSync(join(cwd, 'certs', 'root.crt'), 'utf8');
  writeFileSync(join(cwd, 'many.pem'), root.repeat(300));
});
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

function pipeToHead(args: readonly string[]): Promise<{ code: number | null; stderr: string; first: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let first = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    // `head -1`: read until the first newline, then close the read end.
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      first += d;
      if (first.includes('\n')) {
        first = first.slice(0, first.indexOf('\n'));
        child.stdout.destroy();
      }
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr, first }));
  });
}

describe('meshauth cert inspect | head -1', () => {
  it('ok/a closed stdout ends the command quietly with exit 0', async () => {
    const result = await pipeToHead(['cert', 'inspect', 'many.pem']);
    expect(result.first).not.toBe('');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it('ok/the same with --json', async () => {
    const result = await pipeToHead(['cert', 'inspect', '--json', 'many.pem']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });
});
