// Nesting past MAX_NESTING_DEPTH (64) in a config file's YAML or a MESHAUTH_* JSON value is refused before anything
// recurses over it, with the file, the line (or the key and variable) and what was expected. Review finding: yaml
// recursed once per level, so `[[[…]]]` a few thousand deep overflowed the stack (on Node 20 V8 could then abort
// the process outright, exit 134, on the second such parse), and 400 KB of it took seconds before a
// `not valid YAML (RESOURCE_EXHAUSTION)` that did not say what was expected.
import { describe, expect, it } from 'vitest';
import { loadSidecarConfig, parseYamlText } from '../../../src/config/index.js';
import { jsonTooDeepAt, MAX_NESTING_DEPTH } from '../../../src/config/nesting-depth.js';
import { isMeshauthError, type MeshauthError } from '../../../src/errors/index.js';
import { configRefusal } from '../../helpers/config-refusal.js';

const TOO_DEEP = 'nested deeper than 64 levels: expected at most 64 maps and lists inside each other';

const flowLists = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
const flowMaps = (n: number) => `a: ${'{b: '.repeat(n)}1${'}'.repeat(n)}`;
const dashes = (n: number) => `${'- '.repeat(n)}x\n`;
const blockMaps = (n: number) => Array.from({ length: n }, (_, i) => `${' '.repeat(i)}k:`).join('\n');

const refusal = (text: string) => configRefusal(() => parseYamlText(text, 'f.yaml'));

function depthOf(value: unknown): number {
  let depth = 0;
  let node = value;
  while (typeof node === 'object' && node !== null) {
    depth++;
    node = Array.isArray(node) ? node[0] : Object.values(node)[0];
  }
  return depth;
}

describe('parseYamlText: nesting depth', () => {
  it('ok/the bound is 64', () => {
    expect(MAX_NESTING_DEPTH).toBe(64);
  });

  for (const [name, text] of [
    ['ok/64 flow lists', flowLists(64)],
    ['ok/a map and 63 flow maps', flowMaps(63)],
    ['ok/64 lists by "- "', dashes(64)],
    ['ok/64 block maps by indentation', blockMaps(64)],
  ] as const) {
    it(name, () => {
      expect(depthOf(parseYamlText(text, 'f.yaml'))).toBe(64);
    });
  }

  for (const [name, text, line] of [
    ['fail/65 flow lists', flowLists(65), 1],
    ['fail/a map and 64 flow maps', flowMaps(64), 1],
    ['fail/65 lists by "- "', dashes(65), 1],
    ['fail/65 block maps by indentation: the line of the 65th', blockMaps(65), 65],
    ['fail/deep flow lists after two lines: their line', `a: 1\nb: 2\nc: ${flowLists(100)}`, 3],
  ] as const) {
    it(`${name} → "f.yaml: line ${line}: nested deeper than 64 levels", reason config_too_deep`, () => {
      const error = refusal(text);
      expect(error.message).toBe(`f.yaml: line ${line}: ${TOO_DEEP}`);
      expect(error.reason).toBe('config_too_deep');
      expect(error.detail).toEqual({ file: 'f.yaml', line });
    });
  }

  it('fail/1 MiB of "[" twice in one process: refused both times with the same message (no stack overflow)', () => {
    const text = flowLists(512 * 1024);
    expect(refusal(text).message).toBe(`f.yaml: line 1: ${TOO_DEEP}`);
    expect(refusal(`${text} `).message).toBe(`f.yaml: line 1: ${TOO_DEEP}`);
  });

  it('ok/brackets inside quoted scalars and comments are text, not nesting', () => {
    const deepText = '['.repeat(100);
    const text = `a: "${deepText}"\nb: '${deepText}'\n# ${deepText}\nc: x${deepText}\n`;
    expect(parseYamlText(text, 'f.yaml')).toEqual({ a: deepText, b: deepText, c: `x${deepText}` });
  });
});

describe('MESHAUTH_* JSON values: nesting depth', () => {
  const ENV = {
    MESHAUTH_TRUST_DOMAIN: 'example.org',
    MESHAUTH_CA_URL: 'https://ca.example.org:8443',
    MESHAUTH_CA_BUNDLE: '/etc/meshauth/bundle.pem',
    MESHAUTH_CA_TOKEN: '/var/run/secrets/meshauth/token',
  };

  it('fail/a value nested 65 deep → the key, the variable and the bound', () => {
    let thrown: unknown;
    try {
      loadSidecarConfig(undefined, { ...ENV, MESHAUTH_OUTBOUND_ROUTES: `{"a":${flowLists(64)}}` });
    } catch (error) {
      thrown = error;
    }
    expect(isMeshauthError(thrown, 'MESHAUTH_ERR_CONFIG_INVALID'), String(thrown)).toBe(true);
    expect((thrown as MeshauthError).message).toBe(
      `environment: outbound.routes (from MESHAUTH_OUTBOUND_ROUTES): ${TOO_DEEP}`,
    );
    expect((thrown as MeshauthError).reason).toBe('config_too_deep');
  });

  for (const [name, text, at] of [
    ['ok/64 levels', flowLists(64), undefined],
    ['ok/brackets in strings, an escaped quote among them', `{"a":"\\"${'['.repeat(100)}"}`, undefined],
    ['fail/65 levels: the index of the 65th', flowLists(65), 64],
    ['fail/objects and lists alike', `{"a":${'{"b":['.repeat(33)}1${']}'.repeat(33)}}`, 196],
  ] as const) {
    it(`jsonTooDeepAt: ${name}`, () => {
      expect(jsonTooDeepAt(text)).toBe(at);
    });
  }
});
