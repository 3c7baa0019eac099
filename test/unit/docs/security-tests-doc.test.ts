// docs/security-tests.md stays in sync with the security checklist and the suite: every checklist id exactly once,
// every referenced test file present, every quoted test name found in its file, a note wherever a case is not
// simply covered. The checklist's ids come from the research notes when they are checked out beside the repo,
// otherwise from their fixed ranges (the ids are stable).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('../../..', import.meta.url).pathname;
const DOC = readFileSync(join(ROOT, 'docs/security-tests.md'), 'utf8');
const CHECKLIST = join(ROOT, '../shared/research/security.md');
// In the checklist's order of sections (CI clones the repo without the research notes beside it).
const RANGES: Readonly<Record<string, number>> = { C: 22, T: 8, H: 15, I: 9, P: 12, J: 22, X: 11, A: 15, F: 14, L: 5 };
const STATUSES = new Set(['covered', 'partial', 'n/a', 'open']);

function checklistIds(): string[] {
  if (existsSync(CHECKLIST)) {
    return [...readFileSync(CHECKLIST, 'utf8').matchAll(/^\| ([A-Z][0-9]{2}) \|/gm)].map((m) => m[1] as string);
  }
  return Object.entries(RANGES).flatMap(([letter, n]) =>
    Array.from({ length: n }, (_, i) => `${letter}${String(i + 1).padStart(2, '0')}`),
  );
}

interface Row {
  readonly id: string;
  readonly status: string;
  readonly tests: string;
  readonly note: string;
}

const rows: Row[] = DOC.split('\n')
  .filter((line) => /^\| [A-Z][0-9]{2} \|/.test(line))
  .map((line) => {
    // Cells are split on unescaped pipes only (case texts may contain `\|`).
    const cells = line.split(/(?<!\\)\|/).map((c) => c.trim());
    return { id: cells[1] ?? '', status: cells[3] ?? '', tests: cells[4] ?? '', note: cells[5] ?? '' };
  });

describe('docs/security-tests.md', () => {
  it('ok/lists every checklist id exactly once, in the checklist order', () => {
    const expected = checklistIds();
    expect(expected).toHaveLength(133);
    expect(rows.map((r) => r.id)).toEqual(expected);
  });

  it('ok/every row has a known status; anything not simply covered says why in its note', () => {
    for (const row of rows) {
      expect(STATUSES.has(row.status), `${row.id}: status "${row.status}"`).toBe(true);
      if (row.status !== 'covered') expect(row.note, `${row.id} needs a note`).not.toBe('');
      if (row.status === 'covered' || row.status === 'partial')
        expect(row.tests, `${row.id} needs a test`).not.toBe('');
    }
  });

  it('ok/every referenced file exists and contains the quoted test name', () => {
    const refs = rows.flatMap((row) =>
      [...row.tests.matchAll(/`([^`]+)` › `([^`]+)`/g)].map((m) => ({
        id: row.id,
        file: m[1] as string,
        name: m[2] as string,
      })),
    );
    expect(refs.length).toBeGreaterThan(150);
    const texts = new Map<string, string>();
    for (const ref of refs) {
      const path = join(ROOT, ref.file);
      expect(existsSync(path), `${ref.id}: ${ref.file} does not exist`).toBe(true);
      if (!texts.has(path)) texts.set(path, readFileSync(path, 'utf8'));
      expect(texts.get(path)?.includes(ref.name), `${ref.id}: "${ref.name}" not found in ${ref.file}`).toBe(true);
    }
  });
});
