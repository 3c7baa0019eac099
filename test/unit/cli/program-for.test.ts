// A run of one known command builds the root program with that command's group alone (program-for.ts): each
// top-level command of the whole program must be reachable that way, with the same subcommands, options and help,
// or a command would behave differently when run than `--help` and the README describe it.
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../../src/cli/program.js';
import { COMMAND_GROUPS, programFor } from '../../../src/cli/program-for.js';

/** Every command under `command` by its full name, with its help text. */
function helpByName(command: Command, path: string[] = []): Map<string, string> {
  const helps = new Map<string, string>();
  for (const sub of command.commands) {
    const name = [...path, sub.name()].join(' ');
    sub.configureHelp({ helpWidth: 110 });
    helps.set(name, sub.helpInformation());
    for (const [inner, help] of helpByName(sub, [...path, sub.name()])) helps.set(inner, help);
  }
  return helps;
}

const full = buildProgram();
const fullHelp = helpByName(full);

describe('the program a run builds', () => {
  it('ok/every top-level command has its group, and no group names a command the program lacks', () => {
    expect(Object.keys(COMMAND_GROUPS).sort()).toEqual(full.commands.map((command) => command.name()).sort());
  });

  it.each(full.commands.map((command) => command.name()))(
    'ok/%s: the same commands and help as the whole program',
    async (name) => {
      const program = await programFor([name, '--help']);
      const helps = helpByName(program);
      const own = [...helps].filter(([command]) => command === name || command.startsWith(`${name} `));
      expect(own.length).toBeGreaterThan(0);
      for (const [command, help] of own) expect(help, command).toBe(fullHelp.get(command));
    },
  );

  it('ok/--version, --help and an unknown command', async () => {
    expect((await programFor(['--version'])).commands).toHaveLength(0);
    expect((await programFor(['--help'])).commands).toHaveLength(full.commands.length);
    expect((await programFor(['polcy', 'validate'])).commands).toHaveLength(full.commands.length);
    expect((await programFor([])).commands).toHaveLength(full.commands.length);
    expect((await programFor(['toString'])).commands).toHaveLength(full.commands.length);
  });
});
