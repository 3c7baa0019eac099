// docs/errors.md and the error registry must list the same codes with the same statuses (STYLE 5).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRORS } from '../../../src/errors/index.js';

const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
const rows = new Map(
  [...doc.matchAll(/^\| `(MESHAUTH_ERR_[A-Z_]+)` \| (\d+|—) \| ([^|]+) \|/gm)].map((m) => [
    m[1],
    { status: m[2], message: m[3]?.trim() },
  ]),
);

describe('docs/errors.md', () => {
  it('ok/lists every registry code with its status and client message', () => {
    for (const [code, spec] of Object.entries(ERRORS)) {
      expect(rows.get(code), `${code} missing from docs/errors.md`).toEqual({
        status: spec.status === 0 ? '—' : String(spec.status),
        message: spec.message,
      });
    }
  });

  it('ok/lists no code the registry does not have', () => {
    expect([...rows.keys()].filter((code) => code === undefined || !(code in ERRORS))).toEqual([]);
  });
});
