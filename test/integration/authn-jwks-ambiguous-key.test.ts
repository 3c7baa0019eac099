// Two keys of one issuer that a token could both mean (the same kid, or a token without a kid and two keys for its
// alg) are refused as the issuer's ambiguous key set, `ambiguous_key`, without fetching the key set again (found in a
// probe: they read as `unknown_kid`, which points at a rotation, and each cooldown fetched the key set once more).
// Real sockets on 127.0.0.1.
import { createServer, type Server } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveEndUserTunables } from '../../src/authn/index.js';
import { JwksCache } from '../../src/authn/jwks-cache.js';
import { isMeshauthError } from '../../src/errors/index.js';
import { createLogger } from '../../src/telemetry/index.js';

let server: Server;
let fetches = 0;
let cache: JwksCache;

beforeAll(async () => {
  const keys = await Promise.all(
    [1, 2].map(async () => ({
      ...(await exportJWK((await generateKeyPair('ES256')).publicKey)),
      kid: 'dup',
      alg: 'ES256',
    })),
  );
  server = createServer((_req, res) => {
    fetches++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cache = new JwksCache({
    issuer: 'http://127.0.0.1',
    jwksUri: `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks`,
    tunables: resolveEndUserTunables({}),
    logger: createLogger({ level: 'silent', destination: { write: () => undefined } }),
  });
  expect(await cache.refresh('manual')).toBe(true);
});
afterAll(async () => {
  cache?.close();
  await new Promise<void>((resolve) => server?.close(() => resolve()));
});

describe('JWKS with keys a token cannot tell apart', () => {
  it.each([
    ['two keys with its kid', 'dup'],
    ['no kid and two keys for its alg', undefined],
  ])('fail/%s → ambiguous_key, and no fetch of the key set', async (_what, kid) => {
    const before = fetches;
    const error = await cache.getKey(kid, 'ES256').catch((e: unknown) => e);
    expect(isMeshauthError(error, 'MESHAUTH_ERR_TOKEN_INVALID'), String(error)).toBe(true);
    expect((error as { reason?: string }).reason).toBe('ambiguous_key');
    expect(fetches).toBe(before);
  });
});
