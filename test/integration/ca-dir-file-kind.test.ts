// A file of the CA directory that is not a regular file (an operator's hand-made directory, a mounted Secret): the
// command fails at once with "--dir: CA file <path>: not a regular file" (it printed Node's raw EISDIR, and a FIFO
// there blocked `ca serve` at start); a JWT key reload to such a file keeps the current key signing.
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  JWT_KEY_PUBLICATION_DELAY_MS,
  JwtKeyRing,
  loadCaMaterial,
  loadOrCreateJwtSigningKey,
  writeCaSecretManifest,
} from '../../src/ca/index.js';
import { isMeshauthError } from '../../src/errors/index.js';
import { makeCaDir } from '../helpers/ca-dir.js';
import { logLines } from '../helpers/log-lines.js';

let dir: string;
let cleanup: () => void;

beforeEach(async () => {
  ({ dir, cleanup } = await makeCaDir());
});
afterEach(() => cleanup());

/** Replaces the file at `name` in the CA directory with a directory. */
function directoryAt(name: string): string {
  const path = join(dir, name);
  rmSync(path, { force: true });
  mkdirSync(path);
  return path;
}

async function messageOf(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => new Error('expected a failure'),
    (e: unknown) => e,
  );
  expect(isMeshauthError(error, 'MESHAUTH_ERR_FILE_UNREADABLE'), String(error)).toBe(true);
  return (error as Error).message;
}

describe('CA directory files that are not regular files', () => {
  it('fail/bundle.pem a directory → loading the CA says "--dir: CA file <path>: not a regular file"', async () => {
    const path = directoryAt('bundle.pem');
    expect(await messageOf(loadCaMaterial(dir))).toBe(`--dir: CA file ${path}: not a regular file`);
  });

  it('fail/jwt.key a directory → loading the JWT signing key says "not a regular file"', async () => {
    await loadOrCreateJwtSigningKey(dir);
    const path = directoryAt('jwt.key');
    expect(await messageOf(loadOrCreateJwtSigningKey(dir))).toBe(`--dir: CA file ${path}: not a regular file`);
  });

  it('fail/ca rotate --k8s-secret with bundle.pem a directory says "not a regular file"', async () => {
    const path = directoryAt('bundle.pem');
    const target = { secretName: 'meshauth-ca', namespace: 'meshauth', bundleNamespaces: [] };
    expect(await messageOf(writeCaSecretManifest(dir, target))).toBe(`--dir: CA file ${path}: not a regular file`);
  });

  it('fail/a JWT key reload to a directory keeps the current key signing, logged as a failed reload', async () => {
    const log = logLines('ca');
    const ring = await JwtKeyRing.open(dir, log.logger);
    const kid = ring.signingKey(new Date()).kid;
    const path = directoryAt('jwt.key');
    await ring.refresh();
    // Past the publication delay, when a key that did load would sign.
    expect(ring.signingKey(new Date(Date.now() + JWT_KEY_PUBLICATION_DELAY_MS + 1_000)).kid).toBe(kid);
    expect(ring.jwks(new Date()).keys.map((key) => key.kid)).toEqual([kid]);
    const failed = log.find({ event: 'jwt_key_reload_failed' });
    expect(failed.length).toBeGreaterThan(0);
    expect(JSON.stringify(failed[0])).toContain(`--dir: CA file ${path}: not a regular file`);
  });
});
