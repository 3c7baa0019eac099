// A CA directory file that does not parse (a bad copy out of a vault, a Secret edited by hand, a truncated file) is
// refused naming the directory and the file, with a stable code and the CLI's exit 2. Before, each parser's bare
// sentence reached the operator ("private key cannot be parsed" as MESHAUTH_ERR_KEY_TYPE, whose fix is --key-type;
// "no PEM certificate found"), naming no file, and a damaged root.key ended `ca rotate --intermediate` with OpenSSL's
// "error:1E08010C:DECODER routines::unsupported", no code and exit 1, the exit code scripts retry.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  activateNextRoot,
  loadCaMaterial,
  loadOrCreateJwtSigningKey,
  publishNextRoot,
  retirePreviousRoot,
  rotateIntermediate,
} from '../../../src/ca/index.js';
import { deriveJwtSigningKey } from '../../../src/ca/jwt-signing-key.js';
import { writeCaSecretManifest } from '../../../src/ca/k8s-init.js';
import { buildProgram } from '../../../src/cli/program.js';
import { EXIT_USAGE, exitCodeFor, formatError } from '../../../src/cli/run.js';
import { makeCaDir } from '../../helpers/ca-dir.js';

let ca: Awaited<ReturnType<typeof makeCaDir>>;
beforeEach(async () => {
  ca = await makeCaDir();
});
afterEach(() => {
  vi.restoreAllMocks();
  ca.cleanup();
});

/** The refusal `action` ends with once `file` of the CA directory holds `text`. */
async function refusalWith(file: string, text: string, action: (dir: string) => Promise<unknown>): Promise<unknown> {
  if (action === retireAfterActivation) {
    await publishNextRoot(ca.dir);
    await activateNextRoot(ca.dir);
  }
  writeFileSync(join(ca.dir, file), text);
  return action(ca.dir).then(
    () => expect.fail(`${file} holding ${JSON.stringify(text)} was accepted`),
    (error: unknown) => error,
  );
}

const cases: [string, string, string, (dir: string) => Promise<unknown>][] = [
  ['ca issue/ca serve: intermediate.key', 'intermediate.key', 'garbage\n', loadCaMaterial],
  ['ca issue/ca serve: intermediate.crt', 'intermediate.crt', 'garbage\n', loadCaMaterial],
  ['ca issue/ca serve: bundle.pem empty', 'bundle.pem', '\n', loadCaMaterial],
  ['ca rotate --intermediate: root.key', 'root.key', 'garbage\n', (dir) => rotateIntermediate(dir)],
  ['ca rotate --intermediate: root.crt', 'root.crt', 'garbage\n', (dir) => rotateIntermediate(dir)],
  ['ca serve: jwt.key', 'jwt.key', 'garbage\n', (dir) => loadOrCreateJwtSigningKey(dir)],
  ['ca rotate --intermediate --k8s-secret: intermediate.crt', 'intermediate.crt', 'garbage\n', secretManifest],
  ['a directory without ca.json: root.crt', 'root.crt', 'garbage\n', withoutState(loadCaMaterial)],
  ['ca rotate --root --retire: root-previous.crt', 'root-previous.crt', 'garbage\n', retireAfterActivation],
  ['ca rotate --root --retire: bundle.pem', 'bundle.pem', 'garbage\n', retireAfterActivation],
];

function secretManifest(dir: string): Promise<unknown> {
  return writeCaSecretManifest(dir, { secretName: 'meshauth-ca', namespace: 'meshauth-system', bundleNamespaces: [] });
}

function withoutState(action: (dir: string) => Promise<unknown>): (dir: string) => Promise<unknown> {
  return (dir) => {
    rmSync(join(dir, 'ca.json'));
    return action(dir);
  };
}

/** `ca rotate --root --retire --force` once the file under test was damaged after the root's activation. */
async function retireAfterActivation(dir: string): Promise<unknown> {
  return retirePreviousRoot(dir, new Date(), true);
}

describe('damaged CA directory files', () => {
  it.each(cases)(
    'fail/%s → MESHAUTH_ERR_FILE_UNREADABLE naming the directory and the file, exit 2',
    async (_, file, text, action) => {
      const error = await refusalWith(file, text, action);
      expect(error).toMatchObject({ code: 'MESHAUTH_ERR_FILE_UNREADABLE', reason: 'ca_file_damaged' });
      expect((error as Error).message).toContain(`CA directory ${ca.dir} is inconsistent: ${file} must hold `);
      expect(exitCodeFor(error)).toBe(EXIT_USAGE);
    },
  );

  it('fail/no jwt.key and a damaged intermediate.key to derive it from → names intermediate.key', async () => {
    rmSync(join(ca.dir, 'jwt.key'));
    const error = await refusalWith('intermediate.key', 'garbage\n', deriveJwtSigningKey);
    expect(error).toMatchObject({ code: 'MESHAUTH_ERR_FILE_UNREADABLE', reason: 'ca_file_damaged' });
    expect((error as Error).message).toContain(`CA directory ${ca.dir} is inconsistent: intermediate.key must hold `);
  });

  it('fail/`ca rotate --intermediate` with a damaged root.key → one coded line, exit 2, nothing written', async () => {
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const intermediate = readFileSync(join(ca.dir, 'intermediate.crt'), 'utf8');
    writeFileSync(join(ca.dir, 'root.key'), 'garbage\n');
    const error = await buildProgram()
      .parseAsync(['ca', 'rotate', '--intermediate', '--dir', ca.dir], { from: 'user' })
      .then(
        () => expect.fail('the rotation succeeded'),
        (refusal: unknown) => refusal,
      );
    expect(exitCodeFor(error)).toBe(EXIT_USAGE);
    expect(formatError(error)).toMatch(
      new RegExp(
        `^meshauth: CA directory ${ca.dir} is inconsistent: root\\.key must hold .*\\[MESHAUTH_ERR_FILE_UNREADABLE\\]$`,
      ),
    );
    expect(formatError(error)).not.toContain('DECODER');
    expect(readFileSync(join(ca.dir, 'intermediate.crt'), 'utf8')).toBe(intermediate);
  });

  it('ok/an undamaged directory loads, rotates and gives its JWT key', async () => {
    await expect(loadCaMaterial(ca.dir)).resolves.toMatchObject({ trustDomain: { name: 'example.org' } });
    await expect(rotateIntermediate(ca.dir)).resolves.toMatchObject({ action: 'intermediate' });
    await expect(loadOrCreateJwtSigningKey(ca.dir)).resolves.toHaveProperty('kid');
    rmSync(join(ca.dir, 'jwt.key'));
    await expect(deriveJwtSigningKey(ca.dir)).resolves.toHaveProperty('kid');
  });

  it('fail/a key of another certificate is still "does not belong" (MESHAUTH_ERR_CA_UNAVAILABLE), not damaged', async () => {
    writeFileSync(join(ca.dir, 'root.key'), readFileSync(join(ca.dir, 'intermediate.key')));
    await expect(rotateIntermediate(ca.dir)).rejects.toMatchObject({
      code: 'MESHAUTH_ERR_CA_UNAVAILABLE',
      reason: 'inconsistent',
      message: expect.stringContaining('root.key does not belong to'),
    });
  });
});
