// The whole commander program: every command group registered (one file each). What `--help`, the README's CLI
// reference and a mistyped command see; a run of one known command builds only its group (program-for.ts).
import type { Command } from 'commander';
import { registerCaCommands } from './ca.js';
import { registerCertCommands } from './cert.js';
import { registerDemoCommand } from './demo.js';
import { registerGatewayCommand } from './gateway.js';
import { registerInjectCommands } from './inject.js';
import { registerPolicyCommands } from './policy.js';
import { rootProgram } from './root-program.js';
import { registerSidecarCommand } from './sidecar.js';
import { registerWebhookCommand } from './webhook.js';

export function buildProgram(): Command {
  const program = rootProgram();
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
