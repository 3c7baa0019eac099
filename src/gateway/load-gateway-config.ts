// loadGatewayConfig: gateway.yaml → one validated, frozen GatewayConfig. Validation runs once on the whole
// document; every problem names the file, the key path and what was expected, as one MESHAUTH_ERR_CONFIG_INVALID
// (the CLI turns it into exit code 2).
import { configProblemLines } from '../config/config-issue.js';
import { checkBundleTrustDomain, keyPath, parseYamlText, readConfigText } from '../config/index.js';
import { configIssueMessage } from '../config/issue-message.js';
import { schemaLeafPaths } from '../config/schema-keys.js';
import { MeshauthError } from '../errors/index.js';
import { type GatewayConfig, resolveGatewayConfig } from './gateway-config.js';
import { gatewaySchema } from './gateway-schema.js';

export function loadGatewayConfig(file: string): GatewayConfig {
  const document = parseYamlText(readConfigText(file), file);
  const config = gatewayConfigFromObject(document ?? {}, file);
  checkBundleTrustDomain({ source: file, trustDomain: config.trustDomain, bundleFile: config.ca.bundle });
  return config;
}

/** Validates an already parsed document (tests, `meshauth demo`). */
export function gatewayConfigFromObject(document: unknown, source = 'gateway config'): GatewayConfig {
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    throw new MeshauthError('MESHAUTH_ERR_CONFIG_INVALID', `${source}: expected a YAML mapping at the top level`, {
      reason: 'config_shape',
    });
  }
  const result = gatewaySchema.safeParse(document, { error: configIssueMessage });
  if (!result.success) {
    const issues = result.error.issues;
    const context = {
      data: document,
      leafPaths: gatewayKeyPaths,
      reference: 'see docs/gateway.md for the allowed keys',
    };
    const lines = configProblemLines(source, issues, context);
    throw new MeshauthError('MESHAUTH_ERR_CONFIG_INVALID', lines.join('\n'), {
      reason: 'config_invalid',
      detail: { file: source, key: issues[0] === undefined ? '' : keyPath(issues[0].path) },
    });
  }
  return resolveGatewayConfig(result.data, source);
}

let keyPathCache: readonly string[] | undefined;

/** The key paths gateway.yaml allows (walked on the first unknown key only), in key-suggestion.ts's form. */
function gatewayKeyPaths(): readonly string[] {
  keyPathCache ??= schemaLeafPaths(gatewaySchema);
  return keyPathCache;
}
