// The README's CLI and configuration references are generated (`npm run docs`); these tests fail when they drift
// from the commander program or the zod schema.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../../src/cli/program.js';
import { renderCliReference } from '../../../src/cli/reference.js';
import { CONFIG_DOCS, configKeys, renderConfigReference } from '../../../src/config/config-reference.js';

const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');

function block(name: string): string {
  const start = `<!-- ${name}:start -->\n`;
  const from = readme.indexOf(start);
  const to = readme.indexOf(`\n<!-- ${name}:end -->`);
  return from === -1 || to === -1 ? '' : readme.slice(from + start.length, to);
}

describe('generated README references (run `npm run build && npm run docs` to refresh)', () => {
  it('ok/the CLI reference matches the commander program', () => {
    expect(block('cli')).toBe(renderCliReference(buildProgram()));
  });

  it('ok/every config key of the schema is described, and nothing else', () => {
    const keys = configKeys().map((k) => k.path);
    expect(keys.filter((k) => CONFIG_DOCS[k] === undefined)).toEqual([]);
    expect(Object.keys(CONFIG_DOCS).filter((k) => !keys.includes(k))).toEqual([]);
  });

  it('ok/the configuration reference matches the schema', () => {
    expect(block('config')).toBe(renderConfigReference());
  });
});
