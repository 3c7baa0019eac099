// Request-method checks (an unknown method never reaches a rule): a method is an upper-case HTTP token, so `get` or
// `GeT` cannot slip past a rule written for GET; the sidecar's listeners forward fewer still. Pure.
import { MeshauthError } from '../errors/index.js';

// HTTP token characters without lower-case letters; 32 is longer than any registered method.
const UPPERCASE_TOKEN = /^[A-Z0-9!#$%&'*+.^_`|~-]{1,32}$/;
// What a listener forwards: such a token starting with a letter, as every registered method does.
const FORWARDED_METHOD = /^[A-Z][A-Z0-9!#$%&'*+.^_`|~-]{0,31}$/;

/** Returns the method unchanged, or throws MESHAUTH_ERR_METHOD_INVALID (400). */
export function validateMethod(method: string): string {
  if (!UPPERCASE_TOKEN.test(method)) {
    throw new MeshauthError('MESHAUTH_ERR_METHOD_INVALID', 'request method must be an upper-case HTTP token', {
      reason: 'method',
    });
  }
  return method;
}

/**
 * Whether the sidecar's inbound forwards a request with this method (else it answers 400
 * MESHAUTH_ERR_METHOD_INVALID): never CONNECT, no tunnels through the PEP. The one check the listeners and
 * `policy test` share; Node's HTTP/1.1 parser admits only the methods it knows, all of which pass.
 */
export function isForwardedMethod(method: string): boolean {
  return method !== 'CONNECT' && FORWARDED_METHOD.test(method);
}
