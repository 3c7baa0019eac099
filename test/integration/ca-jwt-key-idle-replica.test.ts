// A CA replica that gets no request after `ca rotate --jwt-key` still reads the new key within its one-second file
// check, so its publication delay starts when the other replicas' does and it stops signing with the old key at the
// same time. Found in review: the key files were checked only when a request reached the main port, so an idle
// replica staged the key at its first request (say 10 minutes later) and signed with the old key for 2 more minutes,
// after the busy replicas and jwt-retired.json had stopped publishing it; verifiers refused those tokens.
import type { JSONWebKeySet } from 'jose';
import { type Agent, request } from 'undici';
import { beforeAll, describe, expect, it } from 'vitest';
import { type CaServer, JWT_KEY_PUBLICATION_DELAY_MS, rotateJwtSigningKey } from '../../src/ca/index.js';
import { startClockedCa } from '../helpers/ca-dir.js';
import { logLines } from '../helpers/log-lines.js';
import { waitFor } from '../helpers/wait.js';

const T = new Date();
let clock = T;
let dir: string;
let server: CaServer;
let anonymous: Agent;
const log = logLines();

beforeAll(async () => {
  const ca = await startClockedCa(log.logger, () => clock);
  ({ dir, server, anonymous } = ca);
  return () => ca.close();
});

async function jwksKids(): Promise<(string | undefined)[]> {
  const response = await request(`${server.url}/v1/jwks`, { dispatcher: anonymous });
  expect(response.statusCode).toBe(200);
  return ((await response.body.json()) as JSONWebKeySet).keys.map((key) => key.kid);
}

describe('ca serve with no request after ca rotate --jwt-key', () => {
  it('fail/an idle replica reads the new key by itself and signs with it from rotation + the delay', async () => {
    const rotation = await rotateJwtSigningKey(dir, T);
    // No request reaches the CA meanwhile: only its own timer can read the files.
    const [line] = await waitFor(
      'the jwt_key_published line',
      () => {
        const lines = log.find({ event: 'jwt_key_published', kid: rotation.kid });
        return lines.length > 0 ? lines : undefined;
      },
      5_000,
    );
    expect(Date.parse((line as { signsFrom: string }).signsFrom)).toBe(T.getTime() + JWT_KEY_PUBLICATION_DELAY_MS);
    // The first request comes later: the new key signs (listed first) since rotation + the delay, as on every other
    // replica, and the old one is published for the tokens it signed until then.
    clock = new Date(T.getTime() + JWT_KEY_PUBLICATION_DELAY_MS + 60_000);
    expect(await jwksKids()).toEqual([rotation.kid, rotation.previousKid]);
  });
});
