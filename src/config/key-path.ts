// How configuration messages name a key: its dotted path as the user wrote it, and the MESHAUTH_* variable that set
// it when one did (the file then holds something else, or nothing, there).

/** `inbound.endUser.issuers[0].algorithms`, `outbound.routes["a.b"]` from a schema issue's path. */
export function keyPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (typeof part === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out;
}

/** ` (from MESHAUTH_…)` when a variable of `fromEnv` (key path → variable) set `key` or a key above it; else ''. */
export function envOrigin(key: string, fromEnv: ReadonlyMap<string, string>): string {
  for (const [path, name] of fromEnv) {
    if (key === path || key.startsWith(`${path}.`) || key.startsWith(`${path}[`)) return ` (from ${name})`;
  }
  return '';
}
