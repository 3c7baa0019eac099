// `meshauth gateway --config FILE` reads its YAML with the same strict rules as the sidecar (src/config/yaml-text.ts):
// a parser warning or a duplicate key is a config error naming the file and line, never a value loaded anyway.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadGatewayConfig } from '../../src/gateway/index.js';

describe('loadGatewayConfig reads YAML strictly', () => {
  for (const [name, text, expected] of [
    ['fail/not YAML', 'listen: [', /gateway\.yaml: line 1: not valid YAML/],
    ['fail/an unresolved tag', 'listen: !nonsense x', /gateway\.yaml: line 1: not valid YAML \(TAG_RESOLVE_FAILED\)/],
    ['fail/a key given twice', 'listen: a\nlisten: b', /gateway\.yaml: line 2: not valid YAML \(DUPLICATE_KEY\)/],
  ] as const) {
    it(name, () => {
      const dir = mkdtempSync(join(tmpdir(), 'meshauth-gateway-config-'));
      try {
        const file = join(dir, 'gateway.yaml');
        writeFileSync(file, text);
        expect(() => loadGatewayConfig(file)).toThrow(expected);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
