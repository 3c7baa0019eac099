// `meshauth policy …` commands. (Placeholder: filled in by the issue that builds them.)
import type { Command } from 'commander';

export function registerPolicyCommands(_program: Command): void {}
