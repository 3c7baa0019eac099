// Property-based tests of request-path normalization (docs/policy.md "Path normalization") against a reference
// built on the WHATWG URL parser (dot segments, as apps built on it resolve them) plus the documented decoding and
// rejection rules, written independently of src/authz/path-normalize.ts. And: no policy decision ever differs
// between a path and an equivalent spelling of it.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compilePolicy, decide, normalizePath } from '../../../src/authz/index.js';
import { policySchema } from '../../../src/authz/policy/schema.js';
import { MeshauthError } from '../../../src/errors/index.js';
import { SpiffeId } from '../../../src/identity/index.js';
import { fuzzParams, fuzzTimeout } from './fuzz-settings.js';

const RUNS = 3000;
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

type Reference = { readonly path: string; readonly query: string } | { readonly rejected: ReadonlySet<string> };

/** The documented rules, step by step; dot segments resolved by WHATWG URL. */
function reference(target: string): Reference {
  const rejected = new Set<string>();
  if (!target.startsWith('/')) return { rejected: new Set(['not_origin_form']) };
  const q = target.indexOf('?');
  const rawPath = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? '' : target.slice(q);
  for (const ch of query) {
    if (ch === '\u0000') rejected.add('nul');
    else if (ch === '#') rejected.add('fragment');
    else if (!/^[\x21-\x7e]$/.test(ch)) rejected.add('bad_char');
  }
  // Decode once, unreserved characters only; other escapes keep their byte with upper-case hex.
  let decoded = '';
  let escapes = ''; // the current run of consecutive escapes, checked as UTF-8 by decodeURIComponent
  const endRun = (): void => {
    try {
      decodeURIComponent(escapes);
    } catch {
      rejected.add('bad_percent_encoding');
    }
    escapes = '';
  };
  for (let i = 0; i < rawPath.length; i++) {
    const ch = rawPath[i] as string;
    if (ch === '%') {
      const hex = rawPath.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) {
        rejected.add('bad_percent_encoding');
        continue;
      }
      const byte = Number.parseInt(hex, 16);
      if (byte === 0) rejected.add('nul');
      if ((byte > 0 && byte < 0x20) || byte === 0x7f) rejected.add('bad_char');
      if (byte === 0x2f) rejected.add('encoded_slash');
      if (byte === 0x5c) rejected.add('backslash');
      escapes += `%${hex}`;
      const c = String.fromCharCode(byte);
      decoded += UNRESERVED.test(c) ? c : `%${hex.toUpperCase()}`;
      i += 2;
      continue;
    }
    endRun();
    if (ch === '\u0000') rejected.add('nul');
    else if (ch === '\\') rejected.add('backslash');
    else if (ch === ';') rejected.add('path_param');
    else if (ch === '#') rejected.add('fragment');
    else if (!/^[\x21-\x7e]$/.test(ch)) rejected.add('bad_char');
    decoded += ch;
  }
  endRun();
  if (rejected.size > 0) return { rejected };
  const path = whatwgDots(decoded.replace(/\/{2,}/g, '/'));
  // What an app that decodes the path once more before parsing it reads (decodeOnceMore).
  const once = decodeOnceMore(path);
  if (once.trailingSpace) rejected.add('bad_char');
  if (once.dotSegment) rejected.add('bad_percent_encoding');
  return rejected.size > 0 ? { rejected } : { path, query };
}

/**
 * The forwarded path decoded once more, as `new URL(decodeURIComponent(url), base)` and `decodeURIComponent(url)
 * .split('?')[0].trim()` read it: whether it ends in white space that trim() (or Python's strip(), which adds U+0085)
 * drops, and whether a segment, up to a `?` or `#` the decode made, is one the URL parser resolves as a dot segment.
 */
function decodeOnceMore(path: string): { trailingSpace: boolean; dotSegment: boolean; cut: string } {
  const decoded = decodeURIComponent(path);
  const cut = decoded.split(/[?#]/)[0] as string;
  const dotSegment = decoded
    .split('/')
    .map((segment) => (segment.split(/[?#]/)[0] as string).replace(/%2e/gi, '.'))
    .some((segment) => segment === '.' || segment === '..');
  return { trailingSpace: /[\s\u0085]$/.test(decoded), dotSegment, cut };
}

// WHATWG URL percent-encodes a few characters of a path; hide them (and the escape character) behind placeholders
// made of unreserved characters, which can neither create nor hide a dot segment, and restore them afterwards.
const HIDDEN = '"<>`{}^|';
function whatwgDots(path: string): string {
  let hidden = '';
  for (const ch of path) {
    const at = HIDDEN.indexOf(ch);
    hidden += ch === '~' ? '~~' : at >= 0 ? `~${at}` : ch;
  }
  const resolved = new URL(hidden, 'http://app.invalid').pathname;
  return resolved.replace(/~(~|[0-9])/g, (_m, c: string) => (c === '~' ? '~' : (HIDDEN[Number(c)] as string)));
}

const token = fc.constantFrom(
  ...'abAZ09.-_~/?#;\\ "<>`{}^|:@!$&\'()*+,=%'.split(''),
  '\u0000',
  '\u007f',
  '\t',
  'é',
  '..',
  './',
  '../',
  '//',
  '%2e',
  '%2E',
  '%2e%2e',
  '%2f',
  '%2F',
  '%5c',
  '%00',
  '%41',
  '%7e',
  '%7E',
  '%25',
  '%252e',
  '%3b',
  '%3B',
  '%20',
  '%09',
  '%0a',
  '%0D',
  '%1f',
  '%7F',
  '%3F',
  '%3f',
  '%23',
  '%252E',
  '%25%32%65',
  '%C2%A0',
  '%c2%85',
  '%EF%BB%BF',
  '%C3%A9',
  '%c3%a9',
  '%E2%82%AC',
  '%C0%AE',
  '%C0%AF',
  '%E9',
  '%ED%A0%80',
  '%F0%9F%98%80',
  '%G1',
  '%4',
);
const rawTarget = fc
  .tuple(fc.boolean(), fc.array(token, { maxLength: 24 }))
  .map(([slash, parts]) => `${slash ? '/' : ''}${parts.join('')}`);

function outcome(target: string): ReturnType<typeof normalizePath> | MeshauthError {
  try {
    return normalizePath(target);
  } catch (error) {
    if (!(error instanceof MeshauthError)) throw error;
    return error;
  }
}

// --- equivalent spellings of one normalized path -------------------------------------------------------------
const segment = fc.stringMatching(/^[A-Za-z0-9\-_~]{1,6}(\.[a-z]{1,3})?$/);
const normalizedPath = fc
  .tuple(fc.array(segment, { maxLength: 5 }), fc.boolean())
  .map(([segs, trailing]) => (segs.length === 0 ? '/' : `/${segs.join('/')}${trailing ? '/' : ''}`));

/** A random spelling of `path` that the documented rules map back to it. */
function spellings(path: string): fc.Arbitrary<string> {
  const segs = path === '/' ? [] : path.slice(1).split('/');
  const noise = fc.constantFrom('', '', '/', './', '%2e/', '%2E/', 'x/../', 'x/%2e%2e/', 'x/.%2E/', '../');
  const encodeChar = (ch: string, how: number): string => {
    if (how === 0) return ch;
    const hex = ch.charCodeAt(0).toString(16).padStart(2, '0');
    return `%${how === 1 ? hex.toUpperCase() : hex.toLowerCase()}`;
  };
  return fc
    .tuple(
      fc.array(noise, { minLength: segs.length + 1, maxLength: segs.length + 1 }),
      fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 64, maxLength: 64 }),
      fc.array(fc.constantFrom('/', '/', '//', '///'), { minLength: segs.length + 1, maxLength: segs.length + 1 }),
    )
    .map(([noises, hows, slashes]) => {
      let k = 0;
      let out = `/${noises[0]}`;
      segs.forEach((seg, i) => {
        // A bare `../` only keeps the meaning before the first segment, where it cannot climb above the root.
        const spelledSeg = [...seg].map((ch) => encodeChar(ch, seg === '' ? 0 : (hows[k++ % 64] as number))).join('');
        out += spelledSeg;
        const next = noises[i + 1] as string;
        if (i < segs.length - 1) out += `${slashes[i + 1]}${next === '../' ? '' : next}`;
      });
      return out;
    });
}

const PEER = SpiffeId.parse('spiffe://example.org/ns/shop/sa/frontend');

function policyFor(path: string, extra: readonly string[]) {
  const segs =
    path === '/'
      ? []
      : path
          .slice(1)
          .split('/')
          .filter((s) => s !== '');
  const patterns = new Set<string>([path, ...extra]);
  if (segs.length > 0) patterns.add(`/${segs[0]}/*`);
  if (segs.length > 1) patterns.add(`/{p}/${segs.slice(1).join('/')}`);
  return compilePolicy(
    policySchema.parse({
      apiVersion: 'meshauth.dev/v1',
      kind: 'Policy',
      rules: [...patterns].map((p, i) => ({
        name: `r${i}`,
        action: i % 2 === 0 ? 'allow' : 'deny',
        to: { paths: [p] },
      })),
    }),
  );
}

describe('normalizePath (property)', () => {
  it(
    'ok/agrees with the WHATWG-based reference: same path and query, or a rejection for a documented reason',
    () => {
      fc.assert(
        fc.property(rawTarget, (target) => {
          const expected = reference(target);
          const actual = outcome(target);
          if ('rejected' in expected) {
            expect(actual).toBeInstanceOf(MeshauthError);
            expect((actual as MeshauthError).code).toBe('MESHAUTH_ERR_PATH_AMBIGUOUS');
            expect([...expected.rejected]).toContain((actual as MeshauthError).reason);
          } else {
            expect(actual).not.toBeInstanceOf(MeshauthError);
            const n = actual as ReturnType<typeof normalizePath>;
            expect({ path: n.path, query: n.query }).toEqual(expected);
            expect(n.target).toBe(n.path + n.query);
          }
        }),
        fuzzParams(RUNS),
      );
    },
    fuzzTimeout(RUNS),
  );

  it(
    'ok/idempotent: the forwarded target normalizes to itself, so the app cannot resolve it any further',
    () => {
      fc.assert(
        fc.property(rawTarget, (target) => {
          const first = outcome(target);
          if (first instanceof MeshauthError) return;
          const again = normalizePath(first.target);
          expect(again.target).toBe(first.target);
          expect(whatwgDots(first.path)).toBe(first.path);
        }),
        fuzzParams(RUNS),
      );
    },
    fuzzTimeout(RUNS),
  );

  it(
    'ok/an app that decodes the forwarded path once more and then parses it resolves and drops nothing',
    () => {
      fc.assert(
        fc.property(rawTarget, (target) => {
          const first = outcome(target);
          if (first instanceof MeshauthError) return;
          const once = decodeOnceMore(first.path);
          expect(once.dotSegment).toBe(false);
          expect(once.trailingSpace).toBe(false);
          // No control left for the URL parser to remove, and no segment it resolves away (WHATWG URL itself).
          const controls = [...decodeURIComponent(first.path)].filter((ch) => ch < ' ' || ch === '\u007f');
          expect(controls).toEqual([]);
          const appPath = new URL(decodeURIComponent(first.path), 'http://app.invalid').pathname;
          expect(appPath.split('/').length).toBe(once.cut.split('/').length);
        }),
        fuzzParams(RUNS),
      );
    },
    fuzzTimeout(RUNS),
  );

  it(
    'ok/every equivalent spelling normalizes to the same path and gets the same decision',
    () => {
      fc.assert(
        fc.property(
          normalizedPath.chain((path) =>
            fc.tuple(fc.constant(path), spellings(path), fc.array(normalizedPath, { maxLength: 3 })),
          ),
          ([path, spelled, extra]) => {
            expect(normalizePath(path).path).toBe(path);
            const normalized = normalizePath(spelled).path;
            expect(normalized).toBe(path);
            const policy = policyFor(path, extra);
            const request = (p: string) => ({
              peerId: PEER,
              method: 'GET',
              path: p,
              host: 'orders',
              port: 8080,
              headers: new Map(),
              sourceIp: '10.0.0.1',
              now: new Date(0),
            });
            expect(decide(policy, request(normalized))).toBe(decide(policy, request(path)));
          },
        ),
        fuzzParams(Math.floor(RUNS / 3)),
      );
    },
    fuzzTimeout(RUNS),
  );
});

// --- what an app that decodes its path before routing (Go's ServeMux, Spring, Flask) reaches ----------------------
const DELIMITERS = "!$&'()+,=:@";
const delimitedSegment = fc
  .stringMatching(/^[A-Za-z0-9\-_~!$&'()+,=:@*{}]{1,6}$/)
  .filter((s) => s !== '.' && s !== '..');
const delimitedPath = fc.array(delimitedSegment, { minLength: 1, maxLength: 4 }).map((segs) => `/${segs.join('/')}`);

function escapeChar(ch: string): string {
  return `%${ch.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`;
}

/** `path` with each character kept, or escaped with upper- or lower-case hex, as `hows` says. */
function escapedSpelling(path: string, hows: readonly number[]): string {
  return [...path]
    .map((ch, i) => {
      const how = ch === '/' ? 0 : (hows[i % hows.length] as number);
      if (how === 0) return ch;
      const hex = ch.charCodeAt(0).toString(16).padStart(2, '0');
      return `%${how === 1 ? hex.toUpperCase() : hex.toLowerCase()}`;
    })
    .join('');
}

describe('deny rules and escaped delimiters (property)', () => {
  it(
    'fail/a request the app decodes to a denied path is denied, however its delimiters are escaped',
    () => {
      fc.assert(
        fc.property(
          delimitedPath,
          fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 32 }),
          fc.boolean(),
          // An escaped `?` or `#` (spaces before it) the app decodes and splits off with what follows.
          fc.option(fc.tuple(fc.constantFrom('%3F', '%3f', '%23', '%20%3F', '%C2%A0%23'), delimitedPath), {
            nil: undefined,
          }),
          (denied, hows, escapedPattern, cut) => {
            // The rule may be written either way; the pattern must still be a valid (normalized) one.
            // `*`, `{` and `}` are pattern syntax: a pattern names them as literals only escaped.
            const pattern = [...denied]
              .map((ch) => ('*{}'.includes(ch) || (escapedPattern && DELIMITERS.includes(ch)) ? escapeChar(ch) : ch))
              .join('');
            const policy = compilePolicy(
              policySchema.parse({
                apiVersion: 'meshauth.dev/v1',
                kind: 'Policy',
                rules: [
                  { name: 'no', action: 'deny', to: { paths: [pattern, `${pattern}/*`] } },
                  { name: 'rest', action: 'allow' },
                ],
              }),
            );
            const spelled = escapedSpelling(denied, hows) + (cut === undefined ? '' : cut[0] + cut[1].slice(1));
            const normalized = normalizePath(spelled);
            // The oracle: the app decodes every escape once, then splits off a query and trims.
            expect((decodeURIComponent(normalized.path).split(/[?#]/)[0] as string).trimEnd()).toBe(denied);
            const d = decide(policy, {
              peerId: PEER,
              method: 'GET',
              path: normalized.path,
              host: 'orders',
              port: 8080,
              headers: new Map(),
              sourceIp: '10.0.0.1',
              now: new Date(0),
            });
            expect(d.rule).toBe('no');
          },
        ),
        fuzzParams(RUNS),
      );
    },
    fuzzTimeout(RUNS),
  );
});
