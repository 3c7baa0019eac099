// The message of a config refusal (MESHAUTH_ERR_CONFIG_INVALID) that `fn` throws; anything else is rethrown, and
// no refusal at all fails the test.
import { isMeshauthError } from '../../src/errors/index.js';

export function configRefusalMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (isMeshauthError(error, 'MESHAUTH_ERR_CONFIG_INVALID')) return error.message;
    throw error;
  }
  throw new Error('expected MESHAUTH_ERR_CONFIG_INVALID');
}
