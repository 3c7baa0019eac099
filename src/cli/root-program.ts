// The `meshauth` program without its commands: name, version, and how commander's own errors are worded. The full
// program (program.ts) and the one-command program a run builds (program-for.ts) both start from it, so a usage
// error reads the same either way.
import { Command } from 'commander';
import { usageErrorText } from './run.js';
import { VERSION } from './version.js';

export function rootProgram(): Command {
  return (
    new Command('meshauth')
      .description('Service-mesh sidecar for mutual authentication: mTLS, SPIFFE identity, policy, passports')
      .version(VERSION)
      .configureOutput({ outputError: (text, write) => write(usageErrorText(text)) })
      .showHelpAfterError('(run with --help for usage)')
      .exitOverride() // commander errors become exceptions, so run.ts picks the exit code (2 for usage)
      // A group run without a known subcommand (`meshauth ca`, `meshauth help bogus`) gets its help on stderr and
      // exit 2 from commander, with no error line: lead with the one every other usage error has, stable code
      // included.
      .addHelpText('beforeAll', ({ error, command }) =>
        error ? usageErrorText(missingCommand(command)).trimEnd() : '',
      )
  );
}

/** `missing command for 'meshauth ca'`, or for `… help bogus` the unknown name. */
function missingCommand(group: Command): string {
  const unknown = group.args.at(-1);
  if (unknown !== undefined) return `unknown command '${unknown}'`;
  const names: string[] = [];
  for (let c: Command | null = group; c !== null; c = c.parent) names.unshift(c.name());
  return `missing command for '${names.join(' ')}'`;
}
