// The program a run needs: for a known command, the root program with that command's group alone, so `meshauth
// policy validate` does not load the sidecar, the CA server and the webhook (their modules were most of every
// command's start-up: 519 CommonJS modules for any command before, 79 for `policy`); `--version` needs none.
// Anything else (`--help`, a mistyped command that wants its "did you mean") gets the whole program.
import type { Command } from 'commander';
import { rootProgram } from './root-program.js';

type Register = (program: Command) => void;

/** Each top-level command, with the group that registers it (`inject` registers `uninject` too). */
export const COMMAND_GROUPS: Readonly<Record<string, () => Promise<Register>>> = {
  ca: async () => (await import('./ca.js')).registerCaCommands,
  cert: async () => (await import('./cert.js')).registerCertCommands,
  policy: async () => (await import('./policy.js')).registerPolicyCommands,
  sidecar: async () => (await import('./sidecar.js')).registerSidecarCommand,
  gateway: async () => (await import('./gateway.js')).registerGatewayCommand,
  inject: async () => (await import('./inject.js')).registerInjectCommands,
  uninject: async () => (await import('./inject.js')).registerInjectCommands,
  webhook: async () => (await import('./webhook.js')).registerWebhookCommand,
  demo: async () => (await import('./demo.js')).registerDemoCommand,
};

/** `args`: the command line after `node main.js`. */
export async function programFor(args: readonly string[]): Promise<Command> {
  const first = args[0];
  if (first === '--version' || first === '-V') return rootProgram();
  const load = first === undefined || !Object.hasOwn(COMMAND_GROUPS, first) ? undefined : COMMAND_GROUPS[first];
  if (load === undefined) return (await import('./program.js')).buildProgram();
  const program = rootProgram();
  (await load())(program);
  return program;
}
