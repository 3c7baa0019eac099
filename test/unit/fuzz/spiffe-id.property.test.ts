// Property-based tests of the SPIFFE ID parser (SPIFFE-ID §2) against an independent reference predicate written
// from the spec text: parse accepts exactly what the reference accepts, formats back to its input, and rejects
// everything else with MESHAUTH_ERR_SPIFFE_ID_INVALID.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MeshauthError } from '../../../src/errors/index.js';
import { SpiffeId, TrustDomain } from '../../../src/identity/index.js';
import { fuzzParams, fuzzTimeout } from './fuzz-settings.js';

const RUNS = 3000;

/** SPIFFE-ID §2: written from the spec, sharing no code with src/identity. */
function specAllows(input: string): boolean {
  if (new TextEncoder().encode(input).length > 2048) return false; // §2.3 maximum length
  const scheme = 'spiffe://';
  if (input.slice(0, scheme.length) !== scheme) return false; // §2: scheme "spiffe", lower case
  const rest = input.slice(scheme.length);
  const cut = rest.indexOf('/');
  const td = cut < 0 ? rest : rest.slice(0, cut);
  if (td.length === 0 || td.length > 255) return false; // §2.1 non-empty, §2.3 at most 255 bytes
  for (const ch of td) if (!'abcdefghijklmnopqrstuvwxyz0123456789.-_'.includes(ch)) return false; // §2.1
  if (cut < 0) return true;
  const segments = rest.slice(cut + 1).split('/');
  for (const seg of segments) {
    if (seg.length === 0 || seg === '.' || seg === '..') return false; // §2.2: no empty, dot or trailing segments
    for (const ch of seg) {
      const ok = /[a-z]/i.test(ch) || /[0-9]/.test(ch) || ch === '.' || ch === '-' || ch === '_';
      if (!ok || ch.length !== 1 || ch.charCodeAt(0) > 0x7a) return false; // §2.2 path characters
    }
  }
  return true;
}

/** Characters that matter to the grammar, and some that must never slip through. */
const interesting = fc.constantFrom(
  ...'abcxyz09.-_/ABCZ:@%?#=;, ~+!$&\'()*[]\\"\t\n\r\u0000\u007f\u00e9\u0130\u212a\uff0f\ud83d\ude00'.split(''),
  '%2F',
  '%2e',
  '..',
  '.',
  '//',
  'spiffe://',
  'SPIFFE://',
);
const noise = fc.array(interesting, { maxLength: 40 }).map((parts) => parts.join(''));

const tdLabel = fc.stringMatching(/^[a-z0-9._-]{1,20}$/);
const segment = fc.stringMatching(/^[A-Za-z0-9._-]{1,16}$/).filter((s) => s !== '.' && s !== '..');
const validId = fc
  .tuple(tdLabel, fc.array(segment, { maxLength: 8 }))
  .map(([td, segs]) => `spiffe://${td}${segs.map((s) => `/${s}`).join('')}`);

/** A valid ID with one random edit: an inserted, replaced or deleted character. */
const mutated = fc
  .tuple(validId, fc.nat(), interesting, fc.constantFrom('insert', 'replace', 'delete'))
  .map(([id, at, text, op]) => {
    const i = at % (id.length + 1);
    if (op === 'insert') return id.slice(0, i) + text + id.slice(i);
    if (op === 'replace') return id.slice(0, i) + text + id.slice(i + 1);
    return id.slice(0, i) + id.slice(i + 1);
  });

/** Near the length limits: a trust domain around 255 bytes, a whole ID around 2048 bytes. */
const longId = fc
  .tuple(fc.integer({ min: 250, max: 260 }), fc.integer({ min: 0, max: 2100 }), fc.constantFrom('a', 'é'))
  .map(([tdLength, pathLength, fill]) => `spiffe://${'t'.repeat(tdLength)}/${'p'.repeat(pathLength)}${fill}`);

const candidate = fc.oneof(
  { weight: 3, arbitrary: mutated },
  { weight: 2, arbitrary: validId },
  { weight: 2, arbitrary: noise.map((n) => `spiffe://${n}`) },
  { weight: 1, arbitrary: noise },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }).map((s) => `spiffe://td/${s}`) },
  { weight: 1, arbitrary: longId },
);

function outcome(input: string): SpiffeId | MeshauthError {
  try {
    return SpiffeId.parse(input);
  } catch (error) {
    if (!(error instanceof MeshauthError)) throw error;
    return error;
  }
}

describe('SpiffeId.parse (property)', () => {
  it(
    'ok/accepts exactly what the spec allows, and an accepted ID formats back to its input',
    () => {
      fc.assert(
        fc.property(candidate, (input) => {
          const result = outcome(input);
          if (specAllows(input)) {
            expect(result).toBeInstanceOf(SpiffeId);
            const id = result as SpiffeId;
            expect(id.toString()).toBe(input);
            expect(SpiffeId.parse(id.toString()).equals(id)).toBe(true);
            expect(`${id.trustDomain.idString}${id.segments.map((s) => `/${s}`).join('')}`).toBe(input);
          } else {
            expect(result).toBeInstanceOf(MeshauthError);
            expect((result as MeshauthError).code).toBe('MESHAUTH_ERR_SPIFFE_ID_INVALID');
            expect((result as MeshauthError).reason).toBeTypeOf('string');
          }
        }),
        fuzzParams(RUNS),
      );
    },
    fuzzTimeout(RUNS),
  );

  it(
    'ok/format∘parse: fromSegments(td, …segments) parses back to the same trust domain and segments',
    () => {
      fc.assert(
        fc.property(tdLabel, fc.array(segment, { maxLength: 8 }), (td, segs) => {
          const id = SpiffeId.fromSegments(TrustDomain.parse(td), ...segs);
          const again = SpiffeId.parse(id.toString());
          expect(again.equals(id)).toBe(true);
          expect(again.trustDomain.name).toBe(td);
          expect(again.segments).toEqual(segs);
          expect(again.isTrustDomainId).toBe(segs.length === 0);
        }),
        fuzzParams(RUNS),
      );
    },
    fuzzTimeout(RUNS),
  );

  it(
    'ok/TrustDomain.parse accepts exactly the trust-domain part of an allowed ID',
    () => {
      fc.assert(
        fc.property(fc.oneof(tdLabel, noise), (name) => {
          // `spiffe://td` is accepted too and names the same trust domain.
          const bare = name.startsWith('spiffe://') ? name.slice('spiffe://'.length) : name;
          let accepted: boolean;
          try {
            expect(TrustDomain.parse(name).name).toBe(bare);
            accepted = true;
          } catch (error) {
            expect(error).toBeInstanceOf(MeshauthError);
            expect((error as MeshauthError).code).toBe('MESHAUTH_ERR_TRUST_DOMAIN_INVALID');
            accepted = false;
          }
          // `spiffe://` + name is an ID allowed by the spec exactly when name is a trust domain.
          expect(accepted).toBe(!bare.includes('/') && specAllows(`spiffe://${bare}`));
        }),
        fuzzParams(RUNS),
      );
    },
    fuzzTimeout(RUNS),
  );
});
