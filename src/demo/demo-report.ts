// Terminal output of `meshauth demo`: aligned tables, colour only on a TTY (and never with NO_COLOR), no stack
// traces for expected events.

export interface Style {
  bold(text: string): string;
  dim(text: string): string;
  green(text: string): string;
  red(text: string): string;
  cyan(text: string): string;
}

export function makeStyle(color: boolean): Style {
  const wrap = (code: number) => (text: string) => (color ? `\u001b[${code}m${text}\u001b[0m` : text);
  return { bold: wrap(1), dim: wrap(2), green: wrap(32), red: wrap(31), cyan: wrap(36) };
}

/** Pads every column to its widest cell; `cells` may contain colour codes (ignored for width). */
export function table(rows: readonly (readonly string[])[], indent = '  '): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, visibleLength(cell));
    });
  }
  return rows
    .map((row) =>
      (
        indent +
        row
          .map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - visibleLength(cell))))
          .join('  ')
      ).trimEnd(),
    )
    .join('\n');
}

function visibleLength(text: string): number {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: strips ANSI colour codes to measure width
  return text.replace(/\u001b\[\d+m/g, '').length;
}

/** `spiffe://example.org/ns/shop/sa/web` → `web` (the demo's short names), for compact columns. */
export function shortId(id: string | undefined): string {
  if (id === undefined) return '—';
  return id.split('/').at(-1) ?? id;
}
