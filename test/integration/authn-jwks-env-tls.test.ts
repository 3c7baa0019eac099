// NODE_TLS_REJECT_UNAUTHORIZED=0 in a sidecar's or gateway's environment (left over from debugging, or set for
// another tool) must not switch off the certificate check of an end-user JWKS fetch: node:tls takes its default
// from that variable, and a JWKS from any server that can answer on the path would let its keys sign users.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EndUserVerifier } from '../../src/authn/index.js';
import { isMeshauthError } from '../../src/errors/index.js';
import { Metrics } from '../../src/telemetry/index.js';
import { endUserToken, jwksText, type SigningKey, signingKey } from '../helpers/end-user-keys.js';
import { makeWebhookCert } from '../helpers/webhook-tls.js';

const ISSUER = 'https://idp.example.test';
const AUDIENCE = 'shop';
let dir: string;
let server: Server;
let key: SigningKey;
let caFile: string;
let jwksUri: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'meshauth-jwks-env-'));
  const cert = makeWebhookCert(dir, 'jwks');
  caFile = join(dir, 'jwks-ca.pem');
  writeFileSync(caFile, cert.caPem);
  key = await signingKey('k1');
  server = createServer({ cert: cert.certPem, key: cert.keyPem }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(jwksText(key));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  jwksUri = `https://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

function verifier(withCa: boolean): EndUserVerifier {
  return new EndUserVerifier({
    config: {
      required: true,
      issuers: [
        { issuer: ISSUER, audiences: [AUDIENCE], algorithms: ['ES256'], jwksUri, ...(withCa ? { caFile } : {}) },
      ],
      vouchers: [],
      claims: [],
    },
    tunables: { jwksFetchTimeoutMs: 2_000 },
    metrics: new Metrics(),
  });
}

describe('end-user JWKS over HTTPS with NODE_TLS_REJECT_UNAUTHORIZED=0 in the environment', () => {
  it('ok/with the issuer caFile the keys are fetched and the token verifies', async () => {
    const trusting = verifier(true);
    try {
      expect((await trusting.verify(await endUserToken(key, ISSUER, AUDIENCE))).sub).toBe('alice');
    } finally {
      trusting.close();
    }
  });

  it('fail/without it the server stays untrusted: no keys, the token is refused', async () => {
    const previous = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
    const untrusting = verifier(false);
    try {
      const error = await untrusting.verify(await endUserToken(key, ISSUER, AUDIENCE)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isMeshauthError(error, 'MESHAUTH_ERR_TOKEN_INVALID')).toBe(true);
    } finally {
      if (previous === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
      else process.env.NODE_TLS_REJECT_UNAUTHORIZED = previous;
      untrusting.close();
    }
  });
});
