// Usage errors commander itself finds (a missing required flag or argument, an unknown option or command) carry
// the same stable code as every other usage error: exit 2, first line `meshauth: … [MESHAUTH_ERR_USAGE]`, no stack.
// They used to print commander's `error: …` line without a code, so a script could not tell them apart by code.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/program.js';
import { assertBuilt, meshauth } from '../helpers/meshauth-cli.js';

let cwd: string;
beforeAll(() => {
  assertBuilt(['src/cli']);
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-usage-'));
});
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

describe('commander usage errors', () => {
  const cases: [string, string[], string][] = [
    ['a missing required flag', ['ca', 'token', 'create'], "required option '--id <spiffe-id>' not specified"],
    ['an unknown option', ['policy', 'validate', 'p.yaml', '--bogus'], "unknown option '--bogus'"],
    ['an unknown command', ['bogus'], "unknown command 'bogus'"],
    ['a missing argument', ['policy', 'validate'], "missing required argument 'files'"],
    ['a flag without its value', ['ca', 'serve', '--listen'], "option '--listen <host:port>' argument missing"],
  ];
  for (const [what, args, message] of cases) {
    it(`fail/${what} → exit 2, meshauth: … [MESHAUTH_ERR_USAGE] on the first line`, async () => {
      const result = await meshauth(args, { cwd });
      expect(result.code, result.stderr).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr.split('\n')[0]).toBe(`meshauth: ${message} [MESHAUTH_ERR_USAGE]`);
      expect(result.stderr).toContain('(run with --help for usage)');
      expect(result.stderr).not.toMatch(/^\s+at /m);
    });
  }

  // Every group (found by walking the program, so a new one is covered) run bare, and `help` with an unknown name:
  // commander prints the help on stderr; the first line is still the usage error with its code.
  const groups: string[][] = [];
  const walk = (command: Command, path: string[]): void => {
    if (command.commands.length > 0) groups.push(path);
    for (const sub of command.commands) walk(sub, [...path, sub.name()]);
  };
  walk(buildProgram(), []);
  const bare: [string, string[], string][] = [
    ...groups.map((path): [string, string[], string] => [
      `bare \`${['meshauth', ...path].join(' ')}\``,
      path,
      `missing command for '${['meshauth', ...path].join(' ')}'`,
    ]),
    ['`help` with an unknown command', ['help', 'bogus'], "unknown command 'bogus'"],
  ];
  it.each(bare)('fail/%s → exit 2, the usage line, then the help', async (_what, args, message) => {
    expect(groups).toContainEqual(['ca', 'token']);
    const result = await meshauth(args, { cwd });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stdout).toBe('');
    const [first, second] = result.stderr.split('\n');
    expect(first).toBe(`meshauth: ${message} [MESHAUTH_ERR_USAGE]`);
    expect(second).toMatch(/^Usage: meshauth/);
  });

  it('ok/--version and --help still exit 0 on stdout', async () => {
    const version = await meshauth(['--version'], { cwd });
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/^\d+\.\d+\.\d+/);
    const help = await meshauth(['ca', 'serve', '--help'], { cwd });
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--svid-ttl');
    expect(help.stderr).toBe('');
  });
});
