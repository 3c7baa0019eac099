// The config refusal (MESHAUTH_ERR_CONFIG_INVALID) that `fn` throws, or its message; anything else is rethrown, and
// no refusal at all fails the test.
import { isMeshauthError, type MeshauthError } from '../../src/errors/index.js';

export function configRefusal(fn: () => unknown): MeshauthError {
  try {
    fn();
  } catch (error) {
    if (isMeshauthError(error, 'MESHAUTH_ERR_CONFIG_INVALID')) return error;
    throw error;
  }
  throw new Error('expected MESHAUTH_ERR_CONFIG_INVALID');
}

export function configRefusalMessage(fn: () => unknown): string {
  return configRefusal(fn).message;
}
