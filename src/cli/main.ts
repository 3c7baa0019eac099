#!/usr/bin/env node
// The meshauth command. The composition root for every role: only code under src/cli exits the process.
import { buildProgram } from './program.js';
import { exitQuietlyOnBrokenPipe, exitWithError } from './run.js';

exitQuietlyOnBrokenPipe();
buildProgram()
  .parseAsync(process.argv)
  .catch((error: unknown) => exitWithError(error));
