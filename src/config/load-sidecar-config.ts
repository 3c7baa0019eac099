// loadSidecarConfig: file (YAML) + MESHAUTH_* environment → one validated, frozen SidecarConfig.
// Validation runs once, on the whole merged document; every problem is reported with the file, the key path and
// what was expected, as one MESHAUTH_ERR_CONFIG_INVALID (the CLI turns it into exit code 2).
import type { z } from 'zod';
import { MeshauthError } from '../errors/index.js';
import { checkBundleTrustDomain } from './bundle-trust-domain.js';
import { configProblemLines } from './config-issue.js';
import { configKeys } from './config-reference.js';
import { type EnvBinding, MESHAUTH_CONFIG_YAML, SIDECAR_ENV } from './env-names.js';
import { configIssueMessage } from './issue-message.js';
import { envOrigin, keyPath } from './key-path.js';
import { closestKey } from './key-suggestion.js';
import { jsonTooDeepAt, NESTING_TOO_DEEP } from './nesting-depth.js';
import { readConfigText } from './read-config-file.js';
import { resolveSidecarConfig, type SidecarConfig } from './sidecar-config.js';
import { sidecarSchema } from './sidecar-schema.js';
import { parseYamlText } from './yaml-text.js';

export type Environment = Readonly<Record<string, string | undefined>>;

/**
 * Reads `file` (optional: the environment alone may configure the sidecar) or, without one, the whole document
 * inline from MESHAUTH_CONFIG_YAML (what injection sets); applies `env`, validates, freezes.
 */
export function loadSidecarConfig(file: string | undefined, env: Environment = {}): SidecarConfig {
  const inline = env[MESHAUTH_CONFIG_YAML];
  const fromInline = file === undefined && inline !== undefined && inline !== '';
  const source = file ?? (fromInline ? MESHAUTH_CONFIG_YAML : 'environment');
  const document = file !== undefined ? readDocument(file) : fromInline ? parseDocument(inline, source) : {};
  const fromEnv = applyEnvironment(document, env, source);
  let config: SidecarConfig;
  try {
    config = sidecarConfigFromObject(document, source, fromEnv);
  } catch (error) {
    throw source === 'environment' && fromEnv.size === 0 ? withNoConfigHint(error) : error;
  }
  // Here and not in sidecarConfigFromObject: a start reads the bundle, a config built in memory names none yet.
  checkBundleTrustDomain({ source, trustDomain: config.trustDomain, bundleFile: config.ca.bundle, variables: fromEnv });
  return config;
}

/** Nothing configured the sidecar at all: most likely a forgotten --config, which the key list alone does not say. */
function withNoConfigHint(error: unknown): unknown {
  if (!(error instanceof MeshauthError)) return error;
  return new MeshauthError(
    error.code,
    `${error.message}\nno --config FILE, no MESHAUTH_CONFIG_YAML and no MESHAUTH_* setting was given: start it with --config sidecar.yaml`,
    {
      ...(error.reason === undefined ? {} : { reason: error.reason }),
      ...(error.detail === undefined ? {} : { detail: error.detail }),
    },
  );
}

/** Variables named MESHAUTH_* that are not settings but are read elsewhere (error stacks, benchmarks). */
const OTHER_VARIABLES = /^MESHAUTH_(DEBUG|BENCH_[A-Z0-9_]+)$/;

/**
 * `MESHAUTH_*` variables in `env` that set nothing (a misspelled setting is otherwise ignored without a word),
 * each with the setting it most likely meant, if one is close.
 */
export function unknownMeshauthVariables(env: Environment): { name: string; meant: string | undefined }[] {
  const known = new Set([MESHAUTH_CONFIG_YAML, ...SIDECAR_ENV.map((binding) => binding.name)]);
  return Object.keys(env)
    .filter((name) => name.startsWith('MESHAUTH_') && !known.has(name) && !OTHER_VARIABLES.test(name))
    .map((name) => ({ name, meant: closestKey(name, [...known]) }));
}

/** Validates an already parsed document (tests, `meshauth demo`). */
export function sidecarConfigFromObject(
  document: unknown,
  source = 'config',
  fromEnv: ReadonlyMap<string, string> = new Map(),
): SidecarConfig {
  const result = sidecarSchema.safeParse(document, { error: configIssueMessage });
  if (!result.success) throw configError(source, result.error.issues, document, fromEnv);
  return resolveSidecarConfig(result.data, source, fromEnv);
}

function readDocument(file: string): Record<string, unknown> {
  return parseDocument(readConfigText(file), file);
}

function parseDocument(text: string, file: string): Record<string, unknown> {
  const parsed = parseYamlText(text, file);
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new MeshauthError('MESHAUTH_ERR_CONFIG_INVALID', `${file}: expected a YAML mapping at the top level`, {
      reason: 'config_shape',
    });
  }
  return parsed as Record<string, unknown>;
}

/** Writes every set MESHAUTH_* variable into the document; returns key path → variable name for messages. */
function applyEnvironment(document: Record<string, unknown>, env: Environment, source: string): Map<string, string> {
  const applied = new Map<string, string>();
  for (const binding of SIDECAR_ENV) {
    const raw = env[binding.name];
    if (raw === undefined || raw === '') continue;
    setPath(document, binding.path, convert(binding, raw, source));
    applied.set(binding.path.join('.'), binding.name);
  }
  return applied;
}

function convert(binding: EnvBinding, raw: string, source: string): unknown {
  switch (binding.kind) {
    case 'string':
      return raw;
    case 'boolean':
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      throw new MeshauthError(
        'MESHAUTH_ERR_CONFIG_INVALID',
        `${source}: ${binding.path.join('.')} (from ${binding.name}): expected true or false (or 1 or 0), not ${JSON.stringify(raw.slice(0, 40))}`,
        { reason: 'config_env_boolean', detail: { file: source, key: binding.path.join('.') } },
      );
    case 'list':
      return raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
    case 'json':
      if (jsonTooDeepAt(raw) !== undefined) {
        throw new MeshauthError(
          'MESHAUTH_ERR_CONFIG_INVALID',
          `${source}: ${binding.path.join('.')} (from ${binding.name}): ${NESTING_TOO_DEEP}`,
          { reason: 'config_too_deep', detail: { file: source, key: binding.path.join('.') } },
        );
      }
      try {
        return JSON.parse(raw) as unknown;
      } catch {
        throw new MeshauthError(
          'MESHAUTH_ERR_CONFIG_INVALID',
          `${source}: ${binding.path.join('.')} (from ${binding.name}): expected a JSON object`,
          { reason: 'config_env_json' },
        );
      }
  }
}

function setPath(document: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = document;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) {
      node[key] = {};
    }
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1] as string] = value;
}

function configError(
  source: string,
  issues: readonly z.core.$ZodIssue[],
  document: unknown,
  fromEnv: ReadonlyMap<string, string>,
) {
  const context = {
    data: document,
    leafPaths,
    reference: 'README: "Configuration reference"',
    origin: (key: string) => envOrigin(key, fromEnv),
  };
  const lines = configProblemLines(source, issues, context);
  const first = issues[0];
  return new MeshauthError('MESHAUTH_ERR_CONFIG_INVALID', lines.join('\n'), {
    reason: 'config_invalid',
    detail: { file: source, key: first === undefined ? '' : keyPath(first.path) },
  });
}

let leafPathCache: readonly string[] | undefined;

/** Every key path of the schema (computed on the first unknown key only: it walks the whole schema). */
function leafPaths(): readonly string[] {
  leafPathCache ??= configKeys().map((k) => k.path);
  return leafPathCache;
}
