// The MeshauthError `run` refuses with, thrown or as a rejected promise, whatever its code; anything else is
// rethrown, and no refusal at all fails the test.
import { isMeshauthError, type MeshauthError } from '../../src/errors/index.js';

export async function refusal(run: () => unknown): Promise<MeshauthError> {
  try {
    await run();
  } catch (error) {
    if (isMeshauthError(error)) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}
