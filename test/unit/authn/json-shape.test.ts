import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonShapeError, MAX_JSON_DEPTH } from '../../../src/authn/json-shape.js';

describe('jsonShapeError', () => {
  it.each([
    ['flat claims', '{"iss":"https://idp","sub":"alice","aud":["shop","billing"],"exp":1}'],
    ['the same name in different objects', '{"a":{"x":1},"b":{"x":2},"c":[{"x":3},{"x":4}]}'],
    ['names that are also values', '{"sub":"sub","aud":"sub"}'],
    ['quotes, braces and escapes inside strings', '{"a":"}\\",\\"a\\":{","b":"[\\\\","c":"\\u0022"}'],
    ['empty containers', '{"a":{},"b":[],"c":[[],{}]}'],
    ['nesting at the limit', `${'['.repeat(MAX_JSON_DEPTH - 1)}{}${']'.repeat(MAX_JSON_DEPTH - 1)}`],
  ])('ok/%s', (_name, text) => {
    JSON.parse(text);
    expect(jsonShapeError(text)).toBeUndefined();
  });

  it.each([
    ['two aud at the top', '{"aud":"billing","aud":"shop"}'],
    ['a name spelled with an escape', '{"sub":"mallory","s\\u0075b":"alice"}'],
    ['a name twice in a nested object', '{"realm_access":{"roles":["user"],"roles":["admin"]}}'],
    ['a name twice in an object inside an array', '{"a":[1,{"k":1,"k":2}]}'],
    ['after a nested object closes', '{"a":{"b":1},"c":2,"a":3}'],
  ])('fail/%s → duplicate_name', (_name, text) => {
    JSON.parse(text);
    expect(jsonShapeError(text)).toBe('duplicate_name');
  });

  it('fail/nesting past the limit → too_deep', () => {
    const text = `${'['.repeat(MAX_JSON_DEPTH)}{}${']'.repeat(MAX_JSON_DEPTH)}`;
    JSON.parse(text);
    expect(jsonShapeError(text)).toBe('too_deep');
  });

  it('ok/whatever JSON.stringify writes of a shallow value has no duplicate names (property)', () => {
    fc.assert(
      fc.property(fc.json({ maxDepth: 8 }), (text) => {
        expect(jsonShapeError(text)).toBeUndefined();
      }),
      { numRuns: 500 },
    );
  });

  it('fail/an object written with one of its names repeated is always caught (property)', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 }), { minKeys: 1, maxKeys: 6 }),
        fc.nat(),
        (object, pick) => {
          const names = Object.keys(object);
          const repeated = names[pick % names.length] as string;
          const members = names.map((n) => `${JSON.stringify(n)}:${JSON.stringify(object[n])}`);
          members.push(`${JSON.stringify(repeated)}:null`);
          expect(jsonShapeError(`{${members.join(',')}}`)).toBe('duplicate_name');
        },
      ),
      { numRuns: 500 },
    );
  });
});
