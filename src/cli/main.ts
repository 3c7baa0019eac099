#!/usr/bin/env node
// The meshauth command. The composition root for every role: only code under src/cli exits the process.
import { programFor } from './program-for.js';
import { exitQuietlyOnBrokenPipe, exitWithError } from './run.js';

exitQuietlyOnBrokenPipe();
programFor(process.argv.slice(2))
  .then((program) => program.parseAsync(process.argv))
  .catch((error: unknown) => exitWithError(error));
