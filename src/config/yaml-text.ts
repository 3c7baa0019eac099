// Strict YAML for every config file meshauth reads (sidecar, gateway, inject): one rule set, one error shape.
// parseDocument, not parse: parse() reports an unresolved tag (`!!set`) as a process warning on stderr and loads
// the value anyway; here every YAML error and warning is a config error naming its line, and so is an alias
// without its anchor or one past yaml's expansion bound (toJS throws those).
import { LineCounter, parseDocument } from 'yaml';
import { MeshauthError } from '../errors/index.js';

/** The JS value of `text` (null for an empty document); MESHAUTH_ERR_CONFIG_INVALID (`config_yaml`) otherwise. */
export function parseYamlText(text: string, source: string): unknown {
  const lines = new LineCounter();
  const document = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter: lines });
  const problem = document.errors[0] ?? document.warnings[0];
  if (problem !== undefined) {
    const where = ` line ${lines.linePos(problem.pos[0]).line}`;
    throw new MeshauthError('MESHAUTH_ERR_CONFIG_INVALID', `${source}:${where}: not valid YAML (${problem.code})`, {
      reason: 'config_yaml',
      cause: problem,
    });
  }
  try {
    return document.toJS({ maxAliasCount: 100 });
  } catch (cause) {
    throw new MeshauthError('MESHAUTH_ERR_CONFIG_INVALID', `${source}: not valid YAML (${String(cause)})`, {
      reason: 'config_yaml',
      cause,
    });
  }
}
