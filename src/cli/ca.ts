// `meshauth ca …` commands. (Placeholder: filled in by the issue that builds them.)
import type { Command } from 'commander';

export function registerCaCommands(_program: Command): void {}
