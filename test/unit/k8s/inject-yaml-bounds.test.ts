// `meshauth inject` / `uninject` read each manifest document within the config files' YAML bounds: nesting past 64
// levels and more than 100 aliases in one document are MESHAUTH_ERR_MANIFEST_INVALID naming the document and the
// line, and every document is still read on its own. Review finding: inject-yaml.ts called yaml's parseDocument
// directly, so a deeply nested manifest (from a chart nobody read) recursed until the stack overflowed, which on
// Node 20 can abort the process instead of exiting 2, and its aliases were each resolved by a scan of the document.
import { describe, expect, it } from 'vitest';
import { isMeshauthError, type MeshauthError } from '../../../src/errors/index.js';
import { injectYaml, resolveInjectConfig, uninjectYaml } from '../../../src/k8s/index.js';

const CONFIG = resolveInjectConfig({ trustDomain: 'example.org' });
const TOO_DEEP = 'nested deeper than 64 levels: expected at most 64 maps and lists inside each other';
const TOO_MANY_ALIASES = 'more than 100 aliases (*name): expected at most 100 in one document';

const CONFIG_MAP = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n'; // 4 lines

/** A ConfigMap whose data holds `n` anchored values, each followed by its alias: alias I (from 1) on line 5 + 2I. */
function configMapWithAliases(n: number): string {
  const data = Array.from({ length: n }, (_, i) => `  k${i}: &v${i} "${i}"\n  l${i}: *v${i}\n`).join('');
  return `${CONFIG_MAP}data:\n${data}`;
}

function refusal(run: () => unknown): MeshauthError {
  try {
    run();
  } catch (error) {
    if (isMeshauthError(error, 'MESHAUTH_ERR_MANIFEST_INVALID')) return error;
    throw error;
  }
  throw new Error('expected MESHAUTH_ERR_MANIFEST_INVALID');
}

describe('injectYaml: nesting depth', () => {
  it('fail/a second document nested 65 deep → its number, its first line and the line, reason manifest_too_deep', () => {
    // The document's map and `data` make 2 levels: 63 flow lists more make 65.
    const deep = `${CONFIG_MAP}data: { x: ${'['.repeat(63)}${']'.repeat(63)} }\n`;
    const error = refusal(() => injectYaml(`${CONFIG_MAP}---\n${deep}`, CONFIG));
    expect(error.message).toBe(`document 2 (starting at line 5): line 10: ${TOO_DEEP}`);
    expect(error.reason).toBe('manifest_too_deep');
    expect(error.detail).toEqual({ document: 2, line: 10 });
  });

  it('fail/1 MiB of "[" twice in one process, by inject and uninject: the same refusal (no stack overflow)', () => {
    const text = `${'['.repeat(512 * 1024)}${']'.repeat(512 * 1024)}\n`;
    const expected = `document 1 (starting at line 1): line 1: ${TOO_DEEP}`;
    expect(refusal(() => injectYaml(text, CONFIG)).message).toBe(expected);
    expect(refusal(() => uninjectYaml(text)).message).toBe(expected);
  });

  it('ok/64 levels are read and the document kept as it is', () => {
    const deep = `${CONFIG_MAP}data: { x: ${'['.repeat(62)}${']'.repeat(62)} }\n`;
    expect(injectYaml(deep, CONFIG).text).toBe(deep);
  });
});

describe('injectYaml: aliases', () => {
  it('fail/101 aliases in one document → the line of the 101st, reason manifest_too_many_aliases', () => {
    const error = refusal(() => injectYaml(configMapWithAliases(101), CONFIG));
    expect(error.message).toBe(`document 1 (starting at line 1): line 207: ${TOO_MANY_ALIASES}`);
    expect(error.reason).toBe('manifest_too_many_aliases');
  });

  // 54 aliases, under the bound, but each level's list repeats the one before: yaml's expansion bound in toJS
  // refused it with its own ReferenceError, which escaped as exit 1 and a bare "Excessive alias count" line.
  it('fail/a billion-laughs document under 100 aliases → MESHAUTH_ERR_MANIFEST_INVALID naming the document (inject and uninject)', () => {
    const levels = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const lines = levels.map((name, i) => {
      const items = i === 0 ? Array(9).fill('"x"') : Array(9).fill(`*${levels[i - 1]}`);
      return `  ${name}: &${name} [${items.join(', ')}]\n`;
    });
    const text = `${CONFIG_MAP}---\n${CONFIG_MAP}data:\n${lines.join('')}`;
    for (const run of [() => injectYaml(text, CONFIG), () => uninjectYaml(text)]) {
      const error = refusal(run);
      expect(error.message).toMatch(/^document 2 \(starting at line 5\): /);
      expect(error.message).toContain('aliases');
      expect(error.reason).toBe('manifest_too_many_aliases');
      expect(error.detail).toEqual({ document: 2 });
    }
  });

  it('ok/100 aliases in each of two documents: the bound is per document, both kept as they are', () => {
    const text = `${configMapWithAliases(100)}---\n${configMapWithAliases(100)}`;
    expect(injectYaml(text, CONFIG).text).toBe(text);
  });
});

describe('injectYaml: what parseDocument refused is still refused', () => {
  it('fail/a second document after "..." in one chunk → not valid YAML at its line', () => {
    const error = refusal(() => injectYaml(`${CONFIG_MAP}...\na: 1\n`, CONFIG));
    expect(error.message).toMatch(/^document 1 \(starting at line 1\): not valid YAML at line 6: /);
    expect(error.reason).toBe('manifest_yaml');
  });
});
