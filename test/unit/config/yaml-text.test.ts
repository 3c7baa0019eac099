import { describe, expect, it } from 'vitest';
import { parseYamlText } from '../../../src/config/index.js';
import { MeshauthError } from '../../../src/errors/index.js';

describe('parseYamlText', () => {
  for (const [name, text, expected] of [
    ['ok/a mapping', 'a: 1\nb: [x]', { a: 1, b: ['x'] }],
    ['ok/an empty document', '', null],
    ['ok/a resolved YAML 1.1 tag', 'a: !!str 1', { a: '1' }],
    ['ok/a core tag on a quoted scalar', 'a: !!int "2"', { a: 2 }],
  ] as const) {
    it(name, () => {
      expect(parseYamlText(text, 'f.yaml')).toEqual(expected);
    });
  }

  for (const [name, text, expected] of [
    ['fail/unclosed flow sequence', 'a: [', /^f\.yaml: line 1: not valid YAML \(/],
    [
      'fail/an unresolved tag is a warning of the parser, refused here',
      'a: 1\nb: !nonsense x',
      /^f\.yaml: line 2: not valid YAML \(TAG_RESOLVE_FAILED\)$/,
    ],
    // The key is named with its path: the line alone left the reader to find which key, under which parent.
    [
      'fail/a key given twice',
      'a: 1\na: 2',
      /^f\.yaml: line 2: not valid YAML \(DUPLICATE_KEY\): a is given twice, expected each key once in its map$/,
    ],
    [
      'fail/a nested key given twice, quoted the second time',
      'outbound:\n  routes:\n    orders.shop: {}\n    "orders.shop": {}',
      /^f\.yaml: line 4: not valid YAML \(DUPLICATE_KEY\): outbound\.routes\["orders\.shop"\] is given twice,/,
    ],
    [
      'fail/a key given twice in a flow map inside a list',
      'a:\n  - x: 1\n  - { y: 1, y: 2 }',
      /^f\.yaml: line 3: not valid YAML \(DUPLICATE_KEY\): a\[1\]\.y is given twice,/,
    ],
    // yaml resolves these YAML 1.1 tags by default into a Buffer, a Set, a Date: values no schema here takes,
    // refused before as "expected a string" further on, without the line.
    [
      'fail/!!binary is not resolved',
      'a: 1\nb: !!binary aGVsbG8=',
      /^f\.yaml: line 2: not valid YAML \(TAG_RESOLVE_FAILED\)$/,
    ],
    ['fail/!!set is not resolved', 'a: 1\nb: !!set {x, y}', /^f\.yaml: line 2: not valid YAML \(TAG_RESOLVE_FAILED\)$/],
    [
      'fail/!!timestamp is not resolved',
      'a: 1\nb: !!timestamp 2001-12-14',
      /^f\.yaml: line 2: not valid YAML \(TAG_RESOLVE_FAILED\)$/,
    ],
    ['fail/an alias without its anchor', 'a: *nowhere', /^f\.yaml: (line 1: )?not valid YAML/],
    [
      // 90 aliases: within the bound on their number (yaml-aliases.test.ts), past the one on their expansion.
      'fail/an alias bomb past the expansion bound',
      `a: &a [x, x, x, x, x, x, x, x, x, x]\n${Array.from(
        { length: 9 },
        (_, i) =>
          `b${i}: &b${i} [${Array(10)
            .fill(i === 0 ? '*a' : `*b${i - 1}`)
            .join(', ')}]`,
      ).join('\n')}`,
      /^f\.yaml: not valid YAML/,
    ],
  ] as const) {
    it(name, () => {
      let thrown: unknown;
      try {
        parseYamlText(text, 'f.yaml');
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(MeshauthError);
      expect((thrown as MeshauthError).code).toBe('MESHAUTH_ERR_CONFIG_INVALID');
      expect((thrown as MeshauthError).reason).toBe('config_yaml');
      expect((thrown as MeshauthError).message).toMatch(expected);
    });
  }
});
