// RFC 6750 §3 responses for refused end-user tokens.
import { describe, expect, it } from 'vitest';
import { bearerChallenge, tokenInvalid } from '../../../src/authn/index.js';
import { MeshauthError } from '../../../src/errors/index.js';

describe('bearerChallenge', () => {
  it('ok/invalid token → 401 Bearer error="invalid_token", fixed public body, no reason leak', () => {
    const challenge = bearerChallenge(tokenInvalid('signature', 'secret detail about kid k1'));
    expect(challenge.status).toBe(401);
    expect(challenge.headers['www-authenticate']).toBe('Bearer realm="meshauth", error="invalid_token"');
    expect(JSON.parse(challenge.body)).toEqual({
      code: 'MESHAUTH_ERR_TOKEN_INVALID',
      message: 'invalid end-user token',
    });
    expect(challenge.body).not.toContain('k1');
  });

  it('ok/missing token → 401 Bearer without an error attribute', () => {
    const challenge = bearerChallenge(new MeshauthError('MESHAUTH_ERR_TOKEN_MISSING', 'x'));
    expect(challenge.status).toBe(401);
    expect(challenge.headers['www-authenticate']).toBe('Bearer realm="meshauth"');
  });

  it('ok/malformed header → 400 invalid_request', () => {
    const challenge = bearerChallenge(new MeshauthError('MESHAUTH_ERR_TOKEN_REQUEST_MALFORMED', 'x'));
    expect(challenge.status).toBe(400);
    expect(challenge.headers['www-authenticate']).toBe('Bearer realm="meshauth", error="invalid_request"');
  });

  it('ok/anything else is treated as an invalid token', () => {
    for (const error of [new Error('boom'), new MeshauthError('MESHAUTH_ERR_CONFIG_INVALID', 'x'), undefined]) {
      const challenge = bearerChallenge(error);
      expect(challenge.status).toBe(401);
      expect(JSON.parse(challenge.body).code).toBe('MESHAUTH_ERR_TOKEN_INVALID');
    }
  });
});
