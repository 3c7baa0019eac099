// The CA's discovery document against what strict OIDC/OAuth metadata validators demand (OIDC Discovery 1.0 §3,
// §4.3; RFC 8414 §2, §3.3): every REQUIRED member present with the right type, the issuer byte-exact, endpoints
// https URLs under the issuer, every advertised algorithm one the JWKS can carry.
import { describe, expect, it } from 'vitest';
import { openIdConfiguration } from '../../../src/ca/index.js';

/** The members OIDC Discovery 1.0 §3 marks REQUIRED for every provider (authorization_endpoint only with a
 * front channel, which the CA does not have), plus RFC 8414 §2's REQUIRED ones. */
const REQUIRED_ARRAYS = [
  'response_types_supported',
  'subject_types_supported',
  'id_token_signing_alg_values_supported',
];
const REQUIRED_URLS = ['jwks_uri', 'token_endpoint'];
const SUBJECT_TYPES = new Set(['public', 'pairwise']);
const JWS_ALGS = new Set(['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'EdDSA']);

/** A validator as strict as the strictest client libraries: returns every problem found. */
function strictProblems(doc: Record<string, unknown>, expectedIssuer: string): string[] {
  const problems: string[] = [];
  if (doc.issuer !== expectedIssuer) problems.push('issuer must equal the URL the document was fetched for');
  for (const name of REQUIRED_URLS) {
    const value = doc[name];
    if (typeof value !== 'string') {
      problems.push(`${name} missing`);
      continue;
    }
    const url = new URL(value);
    if (url.protocol !== 'https:') problems.push(`${name} must be https`);
    if (!value.startsWith(expectedIssuer.replace(/\/+$/, ''))) problems.push(`${name} must be under the issuer`);
  }
  for (const name of REQUIRED_ARRAYS) {
    const value = doc[name];
    if (!Array.isArray(value) || value.length === 0 || !value.every((item) => typeof item === 'string')) {
      problems.push(`${name} must be a non-empty array of strings`);
    }
  }
  const subjects = (doc.subject_types_supported as unknown[] | undefined) ?? [];
  if (!subjects.every((type) => SUBJECT_TYPES.has(type as string))) problems.push('unknown subject type');
  const algs = (doc.id_token_signing_alg_values_supported as unknown[] | undefined) ?? [];
  if (algs.includes('none') || !algs.every((alg) => JWS_ALGS.has(alg as string))) problems.push('bad JWS alg');
  if (!algs.includes('RS256') && !algs.includes('ES256')) problems.push('must support RS256 or the JWKS alg');
  const scopes = doc.scopes_supported as unknown[] | undefined;
  if (scopes !== undefined && !scopes.includes('openid')) problems.push('scopes_supported must include openid');
  return problems;
}

describe('openIdConfiguration', () => {
  it.each([
    ['ok/issuer with a port', 'https://ca.example:8443'],
    ['ok/issuer with a path', 'https://mesh.example/ca'],
    ['ok/issuer with a trailing slash (kept byte-exact)', 'https://ca.example:8443/'],
  ])('%s passes a strict validator', (_name, issuer) => {
    const doc = openIdConfiguration(issuer) as unknown as Record<string, unknown>;
    expect(strictProblems(doc, issuer)).toEqual([]);
    expect(doc).toMatchObject({
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['ES256'],
    });
  });

  it('fail/the validator refuses the document as it was before (no response/subject types)', () => {
    const {
      response_types_supported: _r,
      subject_types_supported: _s,
      ...old
    } = openIdConfiguration('https://ca.example') as unknown as Record<string, unknown>;
    expect(strictProblems(old, 'https://ca.example')).toEqual([
      'response_types_supported must be a non-empty array of strings',
      'subject_types_supported must be a non-empty array of strings',
    ]);
  });
});
