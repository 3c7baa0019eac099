// `meshauth gateway --config FILE` reads its YAML with the same strict rules as the sidecar (src/config/yaml-text.ts):
// a parser warning or a duplicate key is a config error naming the file and line, never a value loaded anyway.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

// The config file is read as the sidecar's is: bounded, regular files only. A directory printed the raw EISDIR (and a
// FIFO, not tested here since the old read blocked the whole process, hung the start).
it('fail/a directory as the gateway config → MESHAUTH_ERR_FILE_UNREADABLE, "not a regular file"', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshauth-gateway-config-'));
  try {
    const directory = join(dir, 'gateway.yaml');
    mkdirSync(directory);
    expect(() => loadGatewayConfig(directory)).toThrow(
      expect.objectContaining({
        code: 'MESHAUTH_ERR_FILE_UNREADABLE',
        message: `${directory}: cannot read config file (not a regular file)`,
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
