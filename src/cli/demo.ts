// `meshauth demo …` commands. (Placeholder: filled in by the issue that builds them.)
import type { Command } from 'commander';

export function registerDemoCommand(_program: Command): void {}
