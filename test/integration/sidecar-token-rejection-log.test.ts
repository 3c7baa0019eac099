// A refused end-user token or passport is one log line, as every other rejection (SPEC §9 "bad input"): found by an
// outside test (2026-12-03) flooding the external listener with tokens of made-up issuers: each 401 wrote the
// verifier's own "end-user token rejected" line next to the listener's "request rejected" line (which already
// carries the reason, issuer, alg and kid), so an unauthenticated client doubled the log volume; a passport refused
// on the inbound wrote "passport rejected" next to it too. Logged at the default level (info), as in production.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { endUserToken, jwksText, signingKey } from '../helpers/end-user-keys.js';
import { logLines } from '../helpers/log-lines.js';
import { rawTlsExchange } from '../helpers/raw-tls.js';
import { startApp, startTestSidecar, type TestApp, type TestSidecar } from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';

const TD = 'example.org';
const ISSUER = 'https://issuer.test';
let ca: TestCa;
let dir: string;
let app: TestApp;
let sidecar: TestSidecar;
let client: TestSvid;
let strangerToken: string;
const log = logLines('b', 'info');

beforeAll(async () => {
  ca = await TestCa.create(TD);
  dir = mkdtempSync(join(tmpdir(), 'meshauth-token-log-'));
  writeFileSync(join(dir, 'jwks.json'), jwksText(await signingKey('k1')));
  // Signed and well formed, by an issuer the sidecar does not know.
  strangerToken = await endUserToken(await signingKey('k9'), 'https://stranger.test', 'api');
  const server = await ca.issue({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  writeFileSync(join(dir, 'c.crt'), server.chainPem);
  writeFileSync(join(dir, 'c.key'), server.keyPem, { mode: 0o600 });
  app = await startApp();
  const config = sidecarConfigFromObject(
    {
      trustDomain: TD,
      ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent', token: '/nonexistent' },
      inbound: {
        listen: '127.0.0.1:0',
        app: `127.0.0.1:${app.port}`,
        endUser: {
          issuers: [
            { issuer: ISSUER, jwksUri: `file://${join(dir, 'jwks.json')}`, audiences: ['api'], algorithms: ['ES256'] },
          ],
        },
        external: { listen: '127.0.0.1:0', cert: join(dir, 'c.crt'), key: join(dir, 'c.key') },
      },
      outbound: { listen: '127.0.0.1:0', routes: {} },
      admin: { listen: '127.0.0.1:0' },
    },
    'b.yaml',
  );
  sidecar = await startTestSidecar(ca, `spiffe://${TD}/ns/a/sa/b`, config, { logger: log.logger });
  client = await ca.issue({ id: `spiffe://${TD}/ns/a/sa/client` });
});

afterAll(async () => {
  await sidecar?.sidecar.close(0);
  await app?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

type Listener = 'inbound' | 'external';

const portOf = (listener: Listener) =>
  listener === 'inbound' ? sidecar.sidecar.inboundPort : (sidecar.sidecar.externalPort as number);

/** Sends one request with `headers`; expects `status` and `code`, and returns every log line it wrote. */
async function refusal(listener: Listener, headers: string, status: number, code: string) {
  const from = log.lines.length;
  const reply = await rawTlsExchange(
    portOf(listener),
    client,
    ca.rootPem,
    `GET /orders HTTP/1.1\r\nHost: b.mesh\r\n${headers}Connection: close\r\n\r\n`,
  );
  expect(reply.split('\r\n', 1)[0]).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
  expect(JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)).code).toBe(code);
  return log.lines.slice(from);
}

describe('a refused token or passport is one log line', () => {
  it.each(['inbound', 'external'] as const)(
    'fail/%s: a token of an unknown issuer → 401, one line naming the reason and the issuer',
    async (listener) => {
      const lines = await refusal(
        listener,
        `Authorization: Bearer ${strangerToken}\r\n`,
        401,
        'MESHAUTH_ERR_TOKEN_INVALID',
      );
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({
        direction: listener,
        code: 'MESHAUTH_ERR_TOKEN_INVALID',
        reason: 'issuer',
        issuer: 'https://stranger.test',
        kid: 'k9',
      });
    },
  );

  it.each(['inbound', 'external'] as const)('fail/%s: two Authorization lines → 400, one line', async (listener) => {
    const lines = await refusal(
      listener,
      'Authorization: Bearer a.b.c\r\nAuthorization: Bearer d.e.f\r\n',
      400,
      'MESHAUTH_ERR_TOKEN_REQUEST_MALFORMED',
    );
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ direction: listener, reason: 'duplicate' });
  });

  it('fail/inbound: a forged passport → 401, one line naming the peer', async () => {
    const lines = await refusal(
      'inbound',
      'x-meshauth-passport: e30.e30.AAAA\r\n',
      401,
      'MESHAUTH_ERR_PASSPORT_INVALID',
    );
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ direction: 'inbound', peer: `spiffe://${TD}/ns/a/sa/client` });
  });
});
