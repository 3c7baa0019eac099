import { describe, expect, it } from 'vitest';
import { isForwardedMethod, validateMethod } from '../../../src/authz/method-validate.js';
import { isMeshauthError } from '../../../src/errors/index.js';

describe('validateMethod', () => {
  it.each(['GET', 'POST', 'DELETE', 'PATCH', 'OPTIONS', 'M-SEARCH', 'PROPFIND'])('ok/%s', (method) => {
    expect(validateMethod(method)).toBe(method);
  });

  it.each([
    ['fail/lower', 'get'],
    ['fail/mixed', 'GeT'],
    ['fail/empty', ''],
    ['fail/space', 'GET '],
    ['fail/separator', 'GE/T'],
    ['fail/too-long', 'A'.repeat(33)],
    ['fail/non-ascii', 'G\u00c9T'],
  ])('%s', (_name, method) => {
    let caught: unknown;
    try {
      validateMethod(method);
    } catch (error) {
      caught = error;
    }
    expect(isMeshauthError(caught, 'MESHAUTH_ERR_METHOD_INVALID')).toBe(true);
  });
});

describe('isForwardedMethod', () => {
  it.each(['GET', 'POST', 'M-SEARCH', 'PROPFIND', 'QUERY'])('ok/%s', (method) => {
    expect(isForwardedMethod(method)).toBe(true);
  });

  // FOO and DESCRIBE: HTTP/1.1 cannot carry them (Node's parser refuses them), so h2 does not forward them either.
  it.each(['CONNECT', '1GET', '-X', 'get', '', 'A'.repeat(33), 'FOO', 'DESCRIBE'])('fail/%s', (method) => {
    expect(isForwardedMethod(method)).toBe(false);
  });
});
