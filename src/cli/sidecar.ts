// `meshauth sidecar --config FILE`. (Placeholder: filled in by the sidecar issue.)
import type { Command } from 'commander';

export function registerSidecarCommand(_program: Command): void {}
