// More than MAX_YAML_ALIASES (100) aliases in a config file's YAML are refused at the 101st, with the file, its line
// and what was expected, before yaml resolves any. Review finding: yaml resolves each alias by a scan over every
// anchor and alias before it, so 1 MiB of `- &aN 1` / `- *aN` lines (about 48,000 aliases, under every size bound)
// held the event loop for about a minute; a policy reload runs the same parse on the sidecar's and the gateway's.
import { describe, expect, it } from 'vitest';
import { parseYamlText } from '../../../src/config/index.js';
import { MAX_YAML_ALIASES, readStrictYaml } from '../../../src/config/yaml-text.js';
import { configRefusal } from '../../helpers/config-refusal.js';

const TOO_MANY = 'more than 100 aliases (*name): expected at most 100 in one document';

/** A list of `n` anchors each followed by its alias: alias I (from 1) on line 2I + 1. */
const aliases = (n: number) => `x:\n${Array.from({ length: n }, (_, i) => `- &a${i} ${i}\n- *a${i}\n`).join('')}`;

const refusal = (text: string) => configRefusal(() => parseYamlText(text, 'f.yaml'));

describe('parseYamlText: aliases', () => {
  it('ok/the bound is 100', () => {
    expect(MAX_YAML_ALIASES).toBe(100);
  });

  it('ok/100 aliases are read', () => {
    const { x } = parseYamlText(aliases(100), 'f.yaml') as { x: number[] };
    expect(x).toHaveLength(200);
    expect(x.slice(-2)).toEqual([99, 99]);
  });

  it('fail/101 aliases → the line of the 101st and the bound, reason config_too_many_aliases', () => {
    const error = refusal(aliases(101));
    expect(error.message).toBe(`f.yaml: line 203: ${TOO_MANY}`);
    expect(error.reason).toBe('config_too_many_aliases');
    expect(error.detail).toEqual({ file: 'f.yaml', line: 203 });
  });

  it('fail/aliases in flow collections and merge keys count alike', () => {
    const text = `a: &a {x: 1}\nb: [${Array(60).fill('*a').join(', ')}]\nc: {${Array.from({ length: 40 }, (_, i) => `k${i}: *a`).join(', ')}}\nd:\n  <<: *a\n`;
    expect(refusal(text).message).toBe(`f.yaml: line 5: ${TOO_MANY}`);
  });

  it('fail/1 MiB of anchors and aliases is refused at the 101st alias, before any is resolved', () => {
    const lines = ['x:'];
    for (let i = 0, size = 3; size < 1024 * 1024; i++) {
      const line = i % 2 === 0 ? `- &a${i} 1` : `- *a${i - 1}`;
      lines.push(line);
      size += line.length + 1;
    }
    // The 101st alias is item 202 of the list, on line 203.
    expect(readStrictYaml(lines.join('\n'))).toEqual({
      ok: false,
      problems: [{ line: 203, code: 'TOO_MANY_ALIASES', message: TOO_MANY }],
    });
  });

  it('ok/"*" in quoted, plain and block scalars and in comments is text, not an alias', () => {
    const star = Array.from({ length: 101 }, (_, i) => `*s${i}`);
    const text = [
      `a: "${star.join(' ')}"`,
      `b: '${star.join(' ')}'`,
      `c: x${star.join(' ')}`,
      `d: |\n${star.map((s) => `  ${s}`).join('\n')}`,
      ...star.map((s) => `# ${s}`),
      '',
    ].join('\n');
    const value = parseYamlText(text, 'f.yaml') as Record<string, string>;
    expect(value.a).toBe(star.join(' '));
    expect(value.d).toBe(`${star.join('\n')}\n`);
  });

  it('ok/a top-level block scalar whose lines start with "*" at column 0 is text', () => {
    const star = Array.from({ length: 101 }, (_, i) => `*s${i}`);
    expect(parseYamlText(`--- |\n${star.join('\n')}\n`, 'f.yaml')).toBe(`${star.join('\n')}\n`);
  });
});
