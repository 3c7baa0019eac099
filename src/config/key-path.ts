// How configuration messages name a key: its dotted path as the user wrote it, and the MESHAUTH_* variable that set
// it when one did (the file then holds something else, or nothing, there).
import { type ErrorCode, MeshauthError } from '../errors/index.js';

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

/** `sidecar.yaml: inbound.policy (from MESHAUTH_…)`: how a message names a key whose value is checked after loading. */
export function configKeyName(source: string, key: string, fromEnv: ReadonlyMap<string, string> = new Map()): string {
  return `${source}: ${key}${envOrigin(key, fromEnv)}`;
}

/**
 * A file named by the config could not be used at start: the same error (code, reason, cause) led by `where`
 * (`configKeyName`, or the config file when the message already names the key), as every config error is. Other
 * errors pass through.
 */
export function namedByConfig(error: unknown, where: string, codes: readonly ErrorCode[]): unknown {
  if (!(error instanceof MeshauthError) || !codes.includes(error.code)) return error;
  return new MeshauthError(error.code, `${where}: ${error.message}`, {
    ...(error.reason === undefined ? {} : { reason: error.reason }),
    detail: { ...error.detail, config: where },
    cause: error,
  });
}
