// The token request parser (RFC 6749 §4.4.2, §3.2, §5.2; RFC 8707 §2) and the discovery document: pure, no sockets.
import { describe, expect, it } from 'vitest';
import {
  checkIssuerUrl,
  FORM_CONTENT_TYPE,
  looksLikeJwt,
  openIdConfiguration,
  parseTokenRequest,
} from '../../../src/ca/index.js';
import { oauthErrorBody } from '../../../src/ca/token-request.js';
import { MeshauthError } from '../../../src/errors/index.js';

const parse = (body: string, contentType: string | undefined = FORM_CONTENT_TYPE) =>
  parseTokenRequest(contentType, Buffer.from(body));

function failure(body: string, contentType?: string): { error: string; reason: string | undefined } {
  try {
    parse(body, contentType);
  } catch (error) {
    const e = error as MeshauthError;
    return { error: oauthErrorBody(e).error, reason: e.reason };
  }
  throw new Error('parse did not fail');
}

describe('parseTokenRequest', () => {
  it.each([
    ['ok/audience', 'grant_type=client_credentials&audience=https%3A%2F%2Fapi.example.com', 'https://api.example.com'],
    [
      'ok/resource (RFC 8707)',
      'grant_type=client_credentials&resource=https://api.example.com/x',
      'https://api.example.com/x',
    ],
    ['ok/audience and the same resource', 'grant_type=client_credentials&audience=urn:a&resource=urn:a', 'urn:a'],
    ['ok/unknown parameters are ignored (RFC 6749 §3.1)', 'grant_type=client_credentials&audience=a&scope=x', 'a'],
    ['ok/charset parameter on the media type', 'grant_type=client_credentials&audience=a', 'a'],
    [
      'ok/an empty audience is omitted (RFC 6749 §3.1)',
      'grant_type=client_credentials&audience=&resource=urn:a',
      'urn:a',
    ],
  ])('%s', (_name, body, audience) => {
    expect(parse(body, `${FORM_CONTENT_TYPE}; charset=UTF-8`).audience).toBe(audience);
  });

  it('ok/an empty client_id is omitted (RFC 6749 §3.1)', () => {
    expect(parse('grant_type=client_credentials&audience=a&client_id=').clientId).toBeUndefined();
  });

  it('ok/client_id is passed through for the endpoint to compare', () => {
    expect(parse('grant_type=client_credentials&audience=a&client_id=spiffe%3A%2F%2Fx%2Fy').clientId).toBe(
      'spiffe://x/y',
    );
  });

  it.each([
    ['fail/json media type', '{}', 'application/json', 'invalid_request', 'unsupported_media_type'],
    ['fail/no media type', 'grant_type=client_credentials&audience=a', '', 'invalid_request', 'unsupported_media_type'],
    ['fail/no grant_type', 'audience=a', undefined, 'invalid_request', 'missing_grant_type'],
    ['fail/empty grant_type', 'grant_type=&audience=a', undefined, 'invalid_request', 'missing_grant_type'],
    [
      'fail/authorization_code',
      'grant_type=authorization_code&audience=a',
      undefined,
      'unsupported_grant_type',
      'unsupported_grant_type',
    ],
    [
      'fail/grant_type twice',
      'grant_type=client_credentials&grant_type=client_credentials&audience=a',
      undefined,
      'invalid_request',
      'duplicate_parameter',
    ],
    ['fail/no audience', 'grant_type=client_credentials', undefined, 'invalid_request', 'missing_audience'],
    // A parameter without a value is an omitted one (RFC 6749 §3.1): before, `audience=` was invalid_target.
    [
      'fail/empty audience',
      'grant_type=client_credentials&audience=',
      undefined,
      'invalid_request',
      'missing_audience',
    ],
    [
      'fail/empty audience and empty resource',
      'grant_type=client_credentials&audience=&resource=',
      undefined,
      'invalid_request',
      'missing_audience',
    ],
    [
      'fail/audience with a control character',
      'grant_type=client_credentials&audience=a%0Ab',
      undefined,
      'invalid_target',
      'audience_invalid',
    ],
    [
      'fail/audience too long',
      `grant_type=client_credentials&audience=${'a'.repeat(513)}`,
      undefined,
      'invalid_target',
      'audience_invalid',
    ],
    [
      'fail/resource with a fragment',
      'grant_type=client_credentials&resource=https://a.example/%23x',
      undefined,
      'invalid_target',
      'resource_invalid',
    ],
    [
      'fail/relative resource',
      'grant_type=client_credentials&resource=/api',
      undefined,
      'invalid_target',
      'resource_invalid',
    ],
    [
      'fail/audience ≠ resource',
      'grant_type=client_credentials&audience=a&resource=urn:b',
      undefined,
      'invalid_target',
      'audience_resource_mismatch',
    ],
  ])('%s', (_name, body, contentType, error, reason) => {
    expect(failure(body, contentType)).toEqual({ error, reason });
  });
});

describe('oauthErrorBody', () => {
  it.each([
    [
      'ok/unauthenticated → invalid_client',
      new MeshauthError('MESHAUTH_ERR_CA_UNAUTHENTICATED', 'x'),
      'invalid_client',
    ],
    ['ok/405 → invalid_request', new MeshauthError('MESHAUTH_ERR_CA_METHOD_NOT_ALLOWED', 'x'), 'invalid_request'],
    ['ok/503 → server_error', new MeshauthError('MESHAUTH_ERR_CA_UNAVAILABLE', 'secret detail'), 'server_error'],
  ] as const)('%s', (_name, error, oauth) => {
    const body = oauthErrorBody(error);
    expect(body.error).toBe(oauth);
    expect(body.code).toBe(error.code);
    expect(body.error_description).not.toContain('x');
    expect(body.error_description).not.toContain('secret');
  });
});

describe('issuer URL and discovery', () => {
  it.each(['https://ca.example', 'https://ca.example:8443/', 'https://gw.example/meshauth'])('ok/%s', (url) => {
    expect(checkIssuerUrl(url)).toBe(url);
  });
  it.each(['http://ca.example', 'https://ca.example/?a=1', 'https://ca.example/#x', 'https://u:p@ca.example', 'ca'])(
    'fail/%s',
    (url) => {
      expect(() => checkIssuerUrl(url)).toThrow(MeshauthError);
    },
  );
  it('ok/endpoint URLs hang off the issuer with one slash; the issuer stays byte-exact', () => {
    const doc = openIdConfiguration('https://ca.example:8443/');
    expect(doc.issuer).toBe('https://ca.example:8443/');
    expect(doc.jwks_uri).toBe('https://ca.example:8443/v1/jwks');
    expect(doc.token_endpoint).toBe('https://ca.example:8443/v1/token');
  });
});

describe('looksLikeJwt', () => {
  it.each([
    ['ok/three parts', 'eyJh.eyJ0.c2ln', true],
    ['fail/join token', 'A'.repeat(43), false],
    ['fail/two parts', 'a.b', false],
    ['fail/empty signature (unsecured JWT)', 'a.b.', false],
    ['fail/JSON serialization', '{"payload":"x"}', false],
    ['fail/oversized', `a.${'b'.repeat(17_000)}.c`, false],
  ])('%s', (_name, token, expected) => {
    expect(looksLikeJwt(token)).toBe(expected);
  });
});
