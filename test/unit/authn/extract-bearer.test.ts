// RFC 6750 §2.1 header parsing and the ambiguous cases of security.md J14.
import { describe, expect, it } from 'vitest';
import { extractBearer, type RequestHeaders } from '../../../src/authn/index.js';
import { isMeshauthError } from '../../../src/errors/index.js';

const JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln';

const OK: [string, RequestHeaders, string | undefined][] = [
  ['ok/no authorization header', { host: 'x' }, undefined],
  ['ok/Bearer token', { authorization: `Bearer ${JWT}` }, JWT],
  ['ok/scheme is case-insensitive', { authorization: `bearer ${JWT}` }, JWT],
  ['ok/extra spaces around the token', { authorization: `Bearer   ${JWT}  ` }, JWT],
  ['ok/Basic credentials are the app business', { authorization: 'Basic dXNlcjpwYXNz' }, undefined],
  ['ok/rawHeaders with one authorization', ['Host', 'x', 'Authorization', `Bearer ${JWT}`], JWT],
  ['ok/access_token in the URL is not a header', { ':path': `/a?access_token=${JWT}` }, undefined],
];

const FAIL: [string, RequestHeaders, string][] = [
  [
    'fail/two authorization headers (rawHeaders)',
    ['authorization', `Bearer ${JWT}`, 'Authorization', 'Bearer b'],
    'duplicate',
  ],
  ['fail/two authorization values (array)', { authorization: [`Bearer ${JWT}`, 'Bearer b'] }, 'duplicate'],
  ['fail/empty header', { authorization: '' }, 'empty'],
  ['fail/whitespace header', { authorization: '   ' }, 'empty'],
  ['fail/Bearer without token', { authorization: 'Bearer' }, 'empty'],
  ['fail/Bearer twice', { authorization: `Bearer Bearer ${JWT}` }, 'syntax'],
  ['fail/two tokens', { authorization: `Bearer ${JWT} ${JWT}` }, 'syntax'],
  ['fail/characters outside b64token', { authorization: 'Bearer {"alg":"none"}' }, 'syntax'],
  ['fail/JWT under another scheme', { authorization: `Token ${JWT}` }, 'scheme'],
  ['fail/JWT without a scheme', { authorization: JWT }, 'scheme'],
  // Apps that pick the token with `substring(7)` or an unanchored /Bearer\s+(\S+)/ would read these JWTs, which the
  // sidecar never verified: a JWT starting anywhere in a header that is not one Bearer credential is refused.
  ['fail/JWT glued to Bearer with a comma', { authorization: `Bearer,${JWT}` }, 'scheme'],
  [
    'fail/JWT after Basic credentials in the same header',
    { authorization: `Basic dXNlcjpwYXNz, Bearer ${JWT}` },
    'scheme',
  ],
];

describe('extractBearer', () => {
  for (const [name, headers, expected] of OK) {
    it(name, () => {
      expect(extractBearer(headers)).toBe(expected);
    });
  }
  for (const [name, headers, reason] of FAIL) {
    it(name, () => {
      let caught: unknown;
      try {
        extractBearer(headers);
      } catch (error) {
        caught = error;
      }
      expect(isMeshauthError(caught, 'MESHAUTH_ERR_TOKEN_REQUEST_MALFORMED')).toBe(true);
      expect((caught as { reason: string }).reason).toBe(reason);
      expect((caught as { status: number }).status).toBe(400);
    });
  }
});
