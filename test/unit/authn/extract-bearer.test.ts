// RFC 6750 §2.1 header parsing and its ambiguous cases (two Authorization lines, a JWT under another scheme).
// A JWT under another scheme is recognised by what a decoder reads from it: before, only a header segment starting
// `eyJ` without `=` was, so `Bearer,AAAA.<claims>.` (jose's decodeJwt never reads the header), a padded header or one
// with a space in its JSON passed to the app unverified next to no `x-meshauth-user`.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { extractBearer, type RequestHeaders } from '../../../src/authn/index.js';
import { isMeshauthError } from '../../../src/errors/index.js';

const JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln';
const b64u = (text: string) => Buffer.from(text).toString('base64url');
const CLAIMS = b64u('{"sub":"admin","iss":"https://idp.example","aud":"api"}');
const PADDED = `${b64u('{"alg":"none"}')}=.${CLAIMS}.`;
const SPACED = `${b64u('{ "alg":"none"}')}.${CLAIMS}.`;
const JUNK_HEADER = `AAAA.${CLAIMS}.`;
// RFC 7616 §3.9.1's example, with dotted values (a host name realm, a path) that decode to no JSON.
const DIGEST =
  'Digest username="Mufasa", realm="api.example.com", uri="/dir/index.html", algorithm=SHA-256, ' +
  'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", ' +
  'qop=auth, response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", opaque="FdaNbHvHMQ.ue0o.A"';

/** The reason extractBearer refused `headers` with, or 'accepted'. */
function outcome(headers: RequestHeaders): string {
  try {
    extractBearer(headers);
    return 'accepted';
  } catch (error) {
    return isMeshauthError(error, 'MESHAUTH_ERR_TOKEN_REQUEST_MALFORMED') ? (error.reason ?? '') : 'other error';
  }
}

const OK: [string, RequestHeaders, string | undefined][] = [
  ['ok/no authorization header', { host: 'x' }, undefined],
  ['ok/Bearer token', { authorization: `Bearer ${JWT}` }, JWT],
  ['ok/scheme is case-insensitive', { authorization: `bearer ${JWT}` }, JWT],
  ['ok/extra spaces around the token', { authorization: `Bearer   ${JWT}  ` }, JWT],
  ['ok/Basic credentials are the app business', { authorization: 'Basic dXNlcjpwYXNz' }, undefined],
  ['ok/rawHeaders with one authorization', ['Host', 'x', 'Authorization', `Bearer ${JWT}`], JWT],
  ['ok/access_token in the URL is not a header', { ':path': `/a?access_token=${JWT}` }, undefined],
  ['ok/Digest credentials with dotted values are the app business', { authorization: DIGEST }, undefined],
  [
    'ok/a dotted value that decodes to an empty object carries no claims',
    { authorization: 'Token e30.e30.' },
    undefined,
  ],
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
  // Whatever the header segment: lenient decoders read the claims from the second one.
  ['fail/JWT whose header keeps its base64 padding', { authorization: `Bearer,${PADDED}` }, 'scheme'],
  ['fail/JWT whose header JSON starts with a space', { authorization: `Bearer,${SPACED}` }, 'scheme'],
  ['fail/JWT with a junk header segment', { authorization: `Bearer,${JUNK_HEADER}` }, 'scheme'],
  [
    'fail/junk-header JWT after Basic credentials',
    { authorization: `Basic dXNlcjpwYXNz, Bearer ${JUNK_HEADER}` },
    'scheme',
  ],
  ['fail/junk-header JWT under another scheme', { authorization: `Token ${JUNK_HEADER}` }, 'scheme'],
  ['fail/claims with padding and stray bytes after it', { authorization: `Token AAAA.${CLAIMS}=AAAA.` }, 'scheme'],
  [
    'fail/claims with a stray character inside',
    { authorization: `Token AAAA.${CLAIMS.slice(0, 8)}!${CLAIMS.slice(8)}.` },
    'scheme',
  ],
  [
    'fail/claims as UTF-16',
    { authorization: `Token AAAA.${Buffer.from('{"sub":"admin"}', 'utf16le').toString('base64url')}.` },
    'scheme',
  ],
  ['fail/claims after one dot only', { authorization: `Token AAAA.${CLAIMS}` }, 'scheme'],
  // Found in review of the first rule (it parsed the decoded text with JSON.parse, and tried two paddings): Python's
  // json reads NaN, and a decoder that starts a new quad after `=` reads claims that follow a padded quad.
  ['fail/claims holding NaN', { authorization: `Token AAAA.${b64u('{"sub":"admin","x":NaN}')}.` }, 'scheme'],
  // `IA==` is a space: JSON whitespace before the claims for such a decoder.
  ['fail/claims after a padded quad', { authorization: `Token AAAA.IA==${CLAIMS}.` }, 'scheme'],
  // Found in the final review: PyJWT takes everything between the first and the last dot as the claims, dots dropped;
  // Python's b64decode, PHP and Ruby skip `-` and `_` (outside their alphabet), and a URL-safe-only decoder `+`.
  [
    'fail/claims split by a dot (read across it)',
    { authorization: `Token AAAA.${CLAIMS.slice(0, 1)}.${CLAIMS.slice(1)}.c2ln` },
    'scheme',
  ],
  [
    'fail/claims with a stray _ a standard-alphabet decoder skips',
    { authorization: `Token AAAA.${CLAIMS.slice(0, 2)}_${CLAIMS.slice(2)}.c2ln` },
    'scheme',
  ],
  [
    'fail/claims with a stray + a URL-safe decoder skips',
    { authorization: `Token AAAA.${CLAIMS.slice(0, 2)}+${CLAIMS.slice(2)}.c2ln` },
    'scheme',
  ],
  // A one-alphabet reading that goes on past a character it skips meets the `=` only then.
  [
    'fail/claims after a padded quad with a stray _ before it',
    { authorization: `Token AAAA.IA_==${CLAIMS}.` },
    'scheme',
  ],
  [
    'fail/claims after a padded quad with a stray + before it',
    { authorization: `Token AAAA.IA+==${CLAIMS}.` },
    'scheme',
  ],
  // No credential hides its first byte behind 64 characters that decode to nothing.
  [
    'fail/claims behind a long run of skipped characters',
    { authorization: `Token AAAA.${'!'.repeat(80)}x.` },
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

// Property checks of the rule above: any claims under any header, framing or base64 variant are refused; Basic and
// Digest credentials never are.
describe('extractBearer: a JWT under another scheme, whatever its encoding', () => {
  const claims = fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }), { minKeys: 1, maxKeys: 6 });
  const encoding = fc.constantFrom<(json: string) => string>(
    (json) => b64u(json),
    (json) => Buffer.from(json).toString('base64'), // `+`, `/` and `=` padding
    (json) => b64u(` \n${json}`), // JSON whitespace first
  );
  const header = fc.oneof(
    fc.constant(b64u('{"alg":"none"}')),
    fc.constant(`${b64u('{"alg":"none"}')}=`),
    fc.base64String({ maxLength: 16 }),
    fc.stringMatching(/^[A-Za-z0-9_-]{0,16}$/),
  );
  const framing = fc.constantFrom('Token ', 'Bearer,', 'Basic dXNlcjpwYXNz, Bearer ', 'JWT ', '', 'Bearer;');

  it('fail/property: claims of any content, any header segment, any framing → 400 scheme', () => {
    fc.assert(
      fc.property(claims, encoding, header, framing, (payload, encode, head, frame) => {
        const value = `${frame}${head}.${encode(JSON.stringify(payload))}.c2ln`;
        expect(outcome({ authorization: value })).toBe('scheme');
      }),
    );
  });

  it('ok/property: Basic credentials of any user and password pass to the app', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (user, password) => {
        const value = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
        expect(outcome({ authorization: value })).toBe('accepted');
      }),
    );
  });

  it('ok/property: Digest credentials with any host name realm and dotted path pass to the app', () => {
    fc.assert(
      fc.property(fc.domain(), fc.webPath(), fc.stringMatching(/^[0-9a-f]{32,64}$/), (realm, uri, hex) => {
        const value = `Digest username="a.b.c", realm="${realm}", uri="${uri}.html", nonce="${hex}", response="${hex}"`;
        expect(outcome({ authorization: value })).toBe('accepted');
      }),
    );
  });
});
