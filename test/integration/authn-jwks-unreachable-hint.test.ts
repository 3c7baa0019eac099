// An end-user issuer whose JWKS URL cannot be reached (nothing listens, or no answer in time) logs its refresh
// failure with a `hint` that jwksUri also takes a local key set (file:///absolute/path.json): the likely fix for a
// user who has no identity provider to run. A URL that answers badly (a 500) is a broken provider, not a missing
// one: no hint. Real sockets on 127.0.0.1.
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { JWKS_FILE_HINT, resolveEndUserTunables } from '../../src/authn/index.js';
import { JwksCache } from '../../src/authn/jwks-cache.js';
import { createLogger } from '../../src/telemetry/index.js';

const FAILED = 'JWKS refresh failed; keeping the last good key set';

async function listening(server: Server | ReturnType<typeof createServer>): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return (server.address() as { port: number }).port;
}

describe('JWKS refresh failure hint', () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function failureLine(jwksUri: string): Promise<Record<string, unknown> | undefined> {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({
      level: 'warn',
      destination: { write: (line: string) => lines.push(JSON.parse(line)) },
    });
    const cache = new JwksCache({
      issuer: 'http://127.0.0.1',
      jwksUri,
      tunables: resolveEndUserTunables({ jwksFetchTimeoutMs: 2_000 }),
      logger,
    });
    cleanups.push(() => cache.close());
    expect(await cache.refresh('manual')).toBe(false);
    return lines.find((line) => line.msg === FAILED);
  }

  it('fail/nothing listens at the JWKS URL → the line names the file form', async () => {
    const server = createServer();
    const port = await listening(server);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const line = await failureLine(`http://127.0.0.1:${port}/jwks`);
    expect(line).toMatchObject({ failure: 'network', hint: JWKS_FILE_HINT });
  });

  it('ok/a JWKS URL that answers 500 → no hint', async () => {
    const server = createHttpServer((_req, res) => {
      res.statusCode = 500;
      res.end();
    });
    const port = await listening(server);
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const line = await failureLine(`http://127.0.0.1:${port}/jwks`);
    expect(line).toMatchObject({ failure: 'status' });
    expect(line).not.toHaveProperty('hint');
  });
});
