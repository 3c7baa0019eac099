// Builds the commander program from one register function per command group (one file each).
import { Command } from 'commander';
import { registerCaCommands } from './ca.js';
import { registerCertCommands } from './cert.js';
import { registerDemoCommand } from './demo.js';
import { registerGatewayCommand } from './gateway.js';
import { registerInjectCommands } from './inject.js';
import { registerPolicyCommands } from './policy.js';
import { usageErrorText } from './run.js';
import { registerSidecarCommand } from './sidecar.js';
import { VERSION } from './version.js';
import { registerWebhookCommand } from './webhook.js';

export function buildProgram(): Command {
  const program = new Command('meshauth')
    .description('Service-mesh sidecar for mutual authentication: mTLS, SPIFFE identity, policy, passports')
    .version(VERSION)
    .configureOutput({ outputError: (text, write) => write(usageErrorText(text)) })
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride() // commander errors become exceptions, so run.ts picks the exit code (2 for usage)
    // A group run without a known subcommand (`meshauth ca`, `meshauth help bogus`) gets its help on stderr and
    // exit 2 from commander, with no error line: lead with the one every other usage error has, stable code included.
    .addHelpText('beforeAll', ({ error, command }) => (error ? usageErrorText(missingCommand(command)).trimEnd() : ''));
  registerCaCommands(program);
  registerCertCommands(program);
  registerPolicyCommands(program);
  registerSidecarCommand(program);
  registerGatewayCommand(program);
  registerInjectCommands(program);
  registerWebhookCommand(program);
  registerDemoCommand(program);
  return program;
}

/** `missing command for 'meshauth ca'`, or for `… help bogus` the unknown name. */
function missingCommand(group: Command): string {
  const unknown = group.args.at(-1);
  if (unknown !== undefined) return `unknown command '${unknown}'`;
  const names: string[] = [];
  for (let c: Command | null = group; c !== null; c = c.parent) names.unshift(c.name());
  return `missing command for '${names.join(' ')}'`;
}
