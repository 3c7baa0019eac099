// `meshauth inject` / `meshauth uninject`: multi-document YAML in (a file or stdin), the same documents
// out on stdout with every workload injected (or restored). Warnings go to stderr, one line each. Exit 2 for YAML
// that does not parse (the message names the document and line), an annotation the injection cannot use, or an
// input that cannot be read or is past the size bound (manifest-input.ts).
import type { Command } from 'commander';
import { readConfigText, resolveEndUser } from '../config/index.js';
import { MeshauthError } from '../errors/index.js';
import { type InjectConfig, injectYaml, parseInjectConfig, resolveInjectConfig, uninjectYaml } from '../k8s/index.js';
import { readManifestInput } from './manifest-input.js';

interface InjectOptions {
  readonly file: string;
  readonly config?: string;
}

export function registerInjectCommands(program: Command): void {
  program
    .command('inject')
    .description('add the meshauth sidecar to every workload in Kubernetes YAML (stdout), retarget their Services')
    .option('-f, --file <file>', 'manifest file, or - for stdin', '-')
    .option('-c, --config <file>', 'inject.yaml (trust domain, image, CA URL, proxy resources; docs/injection.md)')
    .action(async (options: InjectOptions) => {
      const config = await loadInjectConfig(options.config);
      const input = await readManifestInput(options.file);
      const result = withFileName(options.file, () => injectYaml(input, config));
      for (const warning of result.warnings) process.stderr.write(`meshauth: warning: ${warning}\n`);
      process.stdout.write(result.text);
    });

  program
    .command('uninject')
    .description('remove what `meshauth inject` added, giving back the original manifests (stdout)')
    .option('-f, --file <file>', 'manifest file, or - for stdin', '-')
    .action(async (options: InjectOptions) => {
      const input = await readManifestInput(options.file);
      process.stdout.write(withFileName(options.file, () => uninjectYaml(input)).text);
    });
}

/** inject.yaml, or the defaults when no file is given. */
export async function loadInjectConfig(file: string | undefined): Promise<InjectConfig> {
  if (file === undefined) return resolveInjectConfig();
  // Read as the sidecar reads its config: a FIFO, a directory or a device at the path is refused at once.
  const config = parseInjectConfig(readConfigText(file), file);
  // endUser goes into every injected sidecar's config: refuse here what each sidecar would refuse at start (HS*,
  // none, an http JWKS), so one bad inject.yaml never leaves every injected pod crash-looping.
  const endUser = config.endUser;
  if (endUser !== undefined) {
    // Loaded only here: every command registers inject, and the sidecar keeps the authn code out unless it needs it.
    const { validateEndUserConfig } = await import('../authn/end-user-config.js');
    validateEndUserConfig(resolveEndUser(endUser), {
      source: file,
      issuersKey: 'endUser.issuers',
      claimsKey: 'endUser.claims',
    });
  }
  return config;
}

/** Refusals of a manifest's content: the message starts with the file it came from. */
const NAMED_BY_FILE: ReadonlySet<string> = new Set([
  'MESHAUTH_ERR_MANIFEST_INVALID',
  'MESHAUTH_ERR_MANIFEST_ANNOTATION_MISPLACED',
  'MESHAUTH_ERR_MANIFEST_ANNOTATION_UNKNOWN',
]);

function withFileName<T>(file: string, run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (error instanceof MeshauthError && NAMED_BY_FILE.has(error.code)) {
      const name = file === '-' ? 'stdin' : file;
      throw new MeshauthError(error.code, `${name}: ${error.message}`, {
        reason: error.reason ?? 'manifest',
        cause: error,
      });
    }
    throw error;
  }
}
