// `ca serve --k8s-token-file` / `--k8s-ca-file` naming something other than a regular file: the request that needs
// the file fails at once with "<flag>: <what> <path>: not a regular file" (a directory printed Node's raw EISDIR
// sentence, and a FIFO at the path blocked every request that needed it). Nothing is sent: the files are read first.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterApiClient, ClusterApiError } from '../../src/ca/cluster-api-client.js';

/** Nothing listens here: a request that got as far as the network would fail otherwise. */
const API = 'https://127.0.0.1:1';
let dir: string;
let directory: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'meshauth-k8s-files-'));
  directory = join(dir, 'a-directory');
  mkdirSync(directory);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function failureOf(promise: Promise<unknown>): Promise<ClusterApiError> {
  const error = await promise.then(
    () => new Error('expected the request to fail'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ClusterApiError);
  return error as ClusterApiError;
}

describe('the CA cluster credentials that are not regular files', () => {
  it('fail/--k8s-token-file a directory → "--k8s-token-file: service-account token file <path>: not a regular file"', async () => {
    const client = new ClusterApiClient({ tokenFile: directory, bearerOrigins: [API] });
    try {
      const error = await failureOf(client.postJson(`${API}/apis/authentication.k8s.io/v1/tokenreviews`, {}));
      expect(error.failure).toBe('credentials');
      expect(error.message).toBe(`--k8s-token-file: service-account token file ${directory}: not a regular file`);
    } finally {
      await client.close();
    }
  });

  it('fail/--k8s-ca-file a directory → "--k8s-ca-file: CA file <path>: not a regular file"', async () => {
    const client = new ClusterApiClient({ caFile: directory, tokenFile: join(dir, 'none'), bearerOrigins: [API] });
    try {
      const error = await failureOf(client.getJson(`${API}/openid/v1/jwks`));
      expect(error.failure).toBe('credentials');
      expect(error.message).toBe(`--k8s-ca-file: CA file ${directory}: not a regular file`);
    } finally {
      await client.close();
    }
  });
});
