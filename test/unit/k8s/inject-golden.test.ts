// Golden files: `meshauth inject` on real-world manifests (test/fixtures/k8s/*.yaml → *.injected.yaml).
// Regenerate after an intended change with UPDATE_GOLDEN=1 and review the diff.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { injectYaml, resolveInjectConfig, uninjectYaml } from '../../../src/k8s/index.js';

const DIR = new URL('../../fixtures/k8s/', import.meta.url).pathname;
const CONFIG = resolveInjectConfig({ trustDomain: 'example.org', noProxy: ['.example.com'] });
const INPUTS = readdirSync(DIR).filter((f) => f.endsWith('.yaml') && !f.endsWith('.injected.yaml'));

describe('inject golden files', () => {
  it('ok/every fixture has a golden file', () => {
    expect(INPUTS.length).toBeGreaterThanOrEqual(8);
  });

  for (const input of INPUTS) {
    const source = readFileSync(join(DIR, input), 'utf8');
    const goldenPath = join(DIR, input.replace(/\.yaml$/, '.injected.yaml'));

    it(`ok/${input}: inject matches the golden file`, () => {
      const { text } = injectYaml(source, CONFIG);
      if (process.env.UPDATE_GOLDEN === '1') writeFileSync(goldenPath, text);
      expect(text).toBe(readFileSync(goldenPath, 'utf8'));
    });

    it(`ok/${input}: inject∘inject = inject, byte for byte`, () => {
      const once = injectYaml(source, CONFIG).text;
      expect(injectYaml(once, CONFIG).text).toBe(once);
    });

    it(`ok/${input}: uninject∘inject = the original, byte for byte`, () => {
      expect(uninjectYaml(injectYaml(source, CONFIG).text).text).toBe(source);
    });
  }
});
