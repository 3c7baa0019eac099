// Request-method check before policy matching (an unknown method never reaches a rule): a method is an upper-case HTTP token, so
// `get` or `GeT` cannot slip past a rule written for GET. Pure.
import { MeshauthError } from '../errors/index.js';

// RFC 9110 §5.6.2 token characters without lower-case letters; 32 is longer than any registered method.
const UPPERCASE_TOKEN = /^[A-Z0-9!#$%&'*+.^_`|~-]{1,32}$/;

/** Returns the method unchanged, or throws MESHAUTH_ERR_METHOD_INVALID (400). */
export function validateMethod(method: string): string {
  if (!UPPERCASE_TOKEN.test(method)) {
    throw new MeshauthError('MESHAUTH_ERR_METHOD_INVALID', 'request method must be an upper-case HTTP token', {
      reason: 'method',
    });
  }
  return method;
}
