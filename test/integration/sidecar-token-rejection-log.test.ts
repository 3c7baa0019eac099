// A refused end-user token or passport is one log line, as every other rejection: found by an outside test (2026-12-03)
// flooding the external listener with tokens of made-up issuers: each 401 wrote the verifier's own "end-user token
// rejected" line next to the listener's "request rejected" line (which already carries the reason, issuer, alg and
// kid), so an unauthenticated client doubled the log volume; a passport refused on the inbound wrote "passport
// rejected" next to it too. Logged at the default level (info), as in production.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endUserToken, signingKey } from '../helpers/end-user-keys.js';
import { EXTERNAL_TD, type ExternalSidecar, startExternalSidecar } from '../helpers/external-sidecar.js';
import { logLines } from '../helpers/log-lines.js';
import { rawTlsExchange } from '../helpers/raw-tls.js';
import type { TestSidecar } from '../helpers/sidecar-harness.js';
import type { TestSvid } from '../helpers/test-ca.js';

let external: ExternalSidecar;
let sidecar: TestSidecar;
let client: TestSvid;
let strangerToken: string;
const log = logLines('b', 'info');

beforeAll(async () => {
  external = await startExternalSidecar({ id: `spiffe://${EXTERNAL_TD}/ns/a/sa/b`, logger: log.logger });
  sidecar = external.sc;
  // Signed and well formed, by an issuer the sidecar does not know.
  strangerToken = await endUserToken(await signingKey('k9'), 'https://stranger.test', 'api');
  client = await external.ca.issue({ id: `spiffe://${EXTERNAL_TD}/ns/a/sa/client` });
});

afterAll(async () => {
  await external?.close();
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
    external.ca.rootPem,
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
    expect(lines[0]).toMatchObject({ direction: 'inbound', peer: `spiffe://${EXTERNAL_TD}/ns/a/sa/client` });
  });
});
