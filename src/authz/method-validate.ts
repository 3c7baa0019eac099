// Request-method checks (an unknown method never reaches a rule): a method is an upper-case HTTP token, so `get` or
// `GeT` cannot slip past a rule written for GET; the sidecar's listeners forward fewer still. Pure.
import { METHODS } from 'node:http';
import { MeshauthError } from '../errors/index.js';

// HTTP token characters without lower-case letters; 32 is longer than any registered method.
const UPPERCASE_TOKEN = /^[A-Z0-9!#$%&'*+.^_`|~-]{1,32}$/;
// What a listener forwards: the methods Node's HTTP/1.1 parser knows (it refuses every other before the sidecar
// sees the request), so HTTP/2 forwards no method that HTTP/1.1 could not carry; never CONNECT.
const FORWARDED_METHODS: ReadonlySet<string> = new Set(METHODS.filter((method) => method !== 'CONNECT'));

/** Whether `method` is an upper-case HTTP token (what validateMethod accepts). */
export function isMethodToken(method: string): boolean {
  return UPPERCASE_TOKEN.test(method);
}

/** Returns the method unchanged, or throws MESHAUTH_ERR_METHOD_INVALID (400). */
export function validateMethod(method: string): string {
  if (!isMethodToken(method)) {
    throw new MeshauthError('MESHAUTH_ERR_METHOD_INVALID', 'request method must be an upper-case HTTP token', {
      reason: 'method',
    });
  }
  return method;
}

/**
 * Whether the sidecar's inbound forwards a request with this method (else it answers 400
 * MESHAUTH_ERR_METHOD_INVALID): one Node's HTTP/1.1 parser knows, so both protocols forward the same methods; never
 * CONNECT, no tunnels through the PEP. The one check the listeners and `policy test` share.
 */
export function isForwardedMethod(method: string): boolean {
  return FORWARDED_METHODS.has(method);
}
