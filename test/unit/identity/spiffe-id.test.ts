// SPIFFE ID parsing (SPIFFE-ID §2), ported from go-spiffe v2 spiffeid TestFromString: every byte 0–255 as a
// trust-domain character and as a path character, plus the named valid and invalid cases.
import { describe, expect, it } from 'vitest';
import { MeshauthError } from '../../../src/errors/index.js';
import { SpiffeId, TrustDomain } from '../../../src/identity/index.js';

const TD_CHARS = new Set('abcdefghijklmnopqrstuvwxyz0123456789.-_');
const PATH_CHARS = new Set('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_');

function reasonOf(input: string): string | undefined {
  try {
    SpiffeId.parse(input);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(MeshauthError);
    expect((error as MeshauthError).code).toBe('MESHAUTH_ERR_SPIFFE_ID_INVALID');
    return (error as MeshauthError).reason;
  }
}

describe('SpiffeId.parse: every byte as a trust-domain character', () => {
  for (let byte = 0; byte < 256; byte++) {
    const c = String.fromCharCode(byte);
    const input = `spiffe://trustdomain${c}/path`;
    if (TD_CHARS.has(c)) {
      it(`ok/trust-domain byte 0x${byte.toString(16)}`, () => {
        const id = SpiffeId.parse(input);
        expect(id.trustDomain.name).toBe(`trustdomain${c}`);
        expect(id.path).toBe('/path');
        expect(id.toString()).toBe(input);
      });
    } else if (c === '/') {
      it('fail/trust-domain byte 0x2f makes an empty path segment', () => {
        expect(reasonOf(input)).toBe('empty_segment');
      });
    } else {
      it(`fail/trust-domain byte 0x${byte.toString(16)}`, () => {
        expect(reasonOf(input)).toBe('bad_trust_domain_char');
      });
    }
  }
});

describe('SpiffeId.parse: every byte as a path character', () => {
  for (let byte = 0; byte < 256; byte++) {
    const c = String.fromCharCode(byte);
    if (c === '/') continue; // the segment separator; covered by the trailing-slash and empty-segment cases
    const input = `spiffe://trustdomain/path${c}`;
    if (PATH_CHARS.has(c)) {
      it(`ok/path byte 0x${byte.toString(16)}`, () => {
        expect(SpiffeId.parse(input).path).toBe(`/path${c}`);
      });
    } else {
      it(`fail/path byte 0x${byte.toString(16)}`, () => {
        expect(reasonOf(input)).toBe('bad_path_char');
      });
    }
  }
});

describe('SpiffeId.parse: named cases', () => {
  it.each([
    ['fail/empty', '', 'empty'],
    ['fail/no scheme', '192.168.2.2:6688', 'wrong_scheme'],
    ['fail/http scheme', 'http://trustdomain/path', 'wrong_scheme'],
    ['fail/upper-case scheme', 'Spiffe://trustdomain/path', 'wrong_scheme'],
    ['fail/SPIFFE scheme', 'SPIFFE://trustdomain/path', 'wrong_scheme'],
    ['fail/scheme without slashes', 'spiffe:trustdomain/path', 'wrong_scheme'],
    ['fail/missing trust domain', 'spiffe:///path', 'missing_trust_domain'],
    ['fail/scheme only', 'spiffe://', 'missing_trust_domain'],
    ['fail/upper-case trust domain', 'spiffe://TRUSTDOMAIN/path', 'bad_trust_domain_char'],
    ['fail/port', 'spiffe://trustdomain:8080/path', 'bad_trust_domain_char'],
    ['fail/userinfo', 'spiffe://user:pass@trustdomain/path', 'bad_trust_domain_char'],
    ['fail/percent-encoded trust domain', 'spiffe://trust%64omain/path', 'bad_trust_domain_char'],
    ['fail/query on the trust domain', 'spiffe://trustdomain?query', 'bad_trust_domain_char'],
    ['fail/fragment on the trust domain', 'spiffe://trustdomain#fragment', 'bad_trust_domain_char'],
    ['fail/trailing slash (root)', 'spiffe://trustdomain/', 'trailing_slash'],
    ['fail/trailing slash', 'spiffe://trustdomain/path/', 'trailing_slash'],
    ['fail/empty segment', 'spiffe://trustdomain/a//b', 'empty_segment'],
    ['fail/only slashes', 'spiffe://trustdomain//', 'empty_segment'],
    ['fail/dot segment first', 'spiffe://trustdomain/./path', 'dot_segment'],
    ['fail/dot-dot segment first', 'spiffe://trustdomain/../path', 'dot_segment'],
    ['fail/dot segment last', 'spiffe://trustdomain/path/.', 'dot_segment'],
    ['fail/dot-dot segment last', 'spiffe://trustdomain/path/..', 'dot_segment'],
    ['fail/dot-dot in the middle', 'spiffe://trustdomain/a/../b', 'dot_segment'],
    ['fail/percent-encoding in the path', 'spiffe://trustdomain/%2e', 'bad_path_char'],
    ['fail/percent-encoded slash', 'spiffe://trustdomain/a%2Fb', 'bad_path_char'],
    ['fail/query', 'spiffe://trustdomain/path?query', 'bad_path_char'],
    ['fail/fragment', 'spiffe://trustdomain/path#fragment', 'bad_path_char'],
    ['fail/non-ASCII', 'spiffe://trustdomain/pâth', 'bad_path_char'],
    ['fail/longer than 2048 bytes', `spiffe://trustdomain/${'a'.repeat(2048 - 20)}`, 'too_long'],
    ['fail/trust domain longer than 255 bytes', `spiffe://${'a'.repeat(256)}/path`, 'trust_domain_too_long'],
  ])('%s', (_name, input, reason) => {
    expect(reasonOf(input)).toBe(reason);
    expect(SpiffeId.tryParse(input)).toBeUndefined();
  });

  it.each([
    ['ok/trust domain only', 'spiffe://trustdomain', ''],
    ['ok/dot prefix segment', 'spiffe://trustdomain/.path', '/.path'],
    ['ok/dot-dot prefix segment', 'spiffe://trustdomain/..path', '/..path'],
    ['ok/three dots', 'spiffe://trustdomain/...', '/...'],
    ['ok/path is case-sensitive', 'spiffe://trustdomain/Path/UPPER', '/Path/UPPER'],
    ['ok/exactly 2048 bytes', `spiffe://trustdomain/${'a'.repeat(2048 - 21)}`, `/${'a'.repeat(2048 - 21)}`],
    ['ok/kubernetes form', 'spiffe://example.org/ns/shop/sa/web', '/ns/shop/sa/web'],
  ])('%s', (_name, input, path) => {
    const id = SpiffeId.parse(input);
    expect(id.path).toBe(path);
    expect(id.toString()).toBe(input);
  });

  it('ok/equality compares the whole ID, kubernetes form is recognised', () => {
    const a = SpiffeId.parse('spiffe://example.org/ns/shop/sa/web');
    expect(a.equals(SpiffeId.parse('spiffe://example.org/ns/shop/sa/web'))).toBe(true);
    expect(a.equals(SpiffeId.parse('spiffe://example.org/ns/shop/sa/Web'))).toBe(false);
    expect(a.kubernetes).toEqual({ namespace: 'shop', serviceAccount: 'web' });
    expect(SpiffeId.parse('spiffe://example.org/ns/shop/sa/web/x').kubernetes).toBeUndefined();
    expect(a.memberOf(TrustDomain.parse('example.org'))).toBe(true);
    expect(a.memberOf(TrustDomain.parse('example.com'))).toBe(false);
  });

  it('ok/a workload of a trust domain is a member with a path; the trust domain ID is none', () => {
    const td = TrustDomain.parse('example.org');
    expect(SpiffeId.parse('spiffe://example.org/ns/shop/sa/web').isWorkloadOf(td)).toBe(true);
    expect(SpiffeId.parse('spiffe://example.org').isWorkloadOf(td)).toBe(false);
    expect(SpiffeId.parse('spiffe://example.org').memberOf(td)).toBe(true);
    expect(SpiffeId.parse('spiffe://other.org/ns/shop/sa/web').isWorkloadOf(td)).toBe(false);
  });
});
