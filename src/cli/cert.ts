// `meshauth cert …` commands. (Placeholder: filled in by the issue that builds them.)
import type { Command } from 'commander';

export function registerCertCommands(_program: Command): void {}
