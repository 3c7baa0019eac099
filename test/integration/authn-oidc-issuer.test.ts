// End-user token verification against a real oidc-provider issuer on 127.0.0.1: discovery, client-credentials tokens,
// key rotation, issuer outage, slow JWKS.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import {
  EndUserVerifier,
  type EndUserVerifierOptions,
  parseUserHeader,
  userHeaderValue,
} from '../../src/authn/index.js';
import { isMeshauthError } from '../../src/errors/index.js';
import { createLogger, Metrics } from '../../src/telemetry/index.js';
import { type OidcIssuer, startOidcIssuer } from '../helpers/oidc-issuer.js';

const AUDIENCE = 'shop';

interface Harness {
  readonly issuer: OidcIssuer;
  readonly verifier: EndUserVerifier;
  readonly metrics: Metrics;
  /** Moves the verifier's clock (token time and JWKS cooldowns). */
  advance(ms: number): void;
}

const teardown: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of teardown.splice(0).reverse()) await fn();
});

async function setup(
  options: { discovery?: boolean; tunables?: EndUserVerifierOptions['tunables']; claims?: string[] } = {},
): Promise<Harness> {
  const issuer = await startOidcIssuer({ audience: AUDIENCE });
  teardown.push(() => issuer.close());
  let clock = Date.now();
  const metrics = new Metrics();
  const verifier = new EndUserVerifier({
    config: {
      required: true,
      issuers: [
        {
          issuer: issuer.issuer,
          audiences: [AUDIENCE],
          algorithms: ['ES256'],
          typ: 'at+jwt',
          ...(options.discovery === true ? {} : { jwksUri: issuer.jwksUri }),
        },
      ],
      vouchers: [],
      claims: options.claims ?? ['scope', 'groups'],
    },
    tunables: { jwksFetchTimeoutMs: 1_000, ...options.tunables },
    metrics,
    now: () => clock,
  });
  teardown.push(() => verifier.close());
  return {
    issuer,
    verifier,
    metrics,
    advance: (ms) => {
      clock += ms;
    },
  };
}

async function rejection(promise: Promise<unknown>): Promise<{ code: string; reason: string | undefined }> {
  try {
    await promise;
  } catch (error) {
    if (isMeshauthError(error)) return { code: error.code, reason: error.reason };
    throw error;
  }
  throw new Error('expected a rejection');
}

async function count(metrics: Metrics, result: string): Promise<number> {
  const { values } = await metrics.tokenVerifications.get();
  return values.find((v) => v.labels.result === result)?.value ?? 0;
}

describe('EndUserVerifier against a real OIDC issuer', () => {
  it('ok/client-credentials token verifies (sub, client_id, scope) and builds x-meshauth-user', async () => {
    const h = await setup();
    const token = await h.issuer.getToken({ scope: 'orders:read' });
    const user = await h.verifier.verify(token);
    expect(user.sub).toBe('orders-client');
    expect(user.iss).toBe(h.issuer.issuer);
    expect(user.claims).toMatchObject({ sub: 'orders-client', client_id: 'orders-client', scope: 'orders:read' });
    expect(parseUserHeader(userHeaderValue(user))).toEqual({
      sub: 'orders-client',
      iss: h.issuer.issuer,
      scope: 'orders:read',
    });
    expect(await count(h.metrics, 'ok')).toBe(1);
  });

  it('ok/authenticate() reads the Authorization header; fail/missing token when required', async () => {
    const h = await setup();
    const token = await h.issuer.getToken();
    const user = await h.verifier.authenticate({ authorization: `Bearer ${token}` });
    expect(user?.sub).toBe('orders-client');
    expect(await rejection(h.verifier.authenticate({}))).toEqual({
      code: 'MESHAUTH_ERR_TOKEN_MISSING',
      reason: 'missing',
    });
    expect(
      await rejection(h.verifier.authenticate(['Authorization', `Bearer ${token}`, 'authorization', 'Bearer x'])),
    ).toEqual({
      code: 'MESHAUTH_ERR_TOKEN_REQUEST_MALFORMED',
      reason: 'duplicate',
    });
    expect(await count(h.metrics, 'missing')).toBe(1);
    expect(await count(h.metrics, 'malformed_header')).toBe(1);
  });

  it('fail/token for another audience (resource indicator) is rejected with reason audience', async () => {
    const h = await setup();
    const token = await h.issuer.getToken({ resource: 'urn:other-service' });
    expect(await rejection(h.verifier.verify(token))).toEqual({
      code: 'MESHAUTH_ERR_TOKEN_INVALID',
      reason: 'audience',
    });
    expect(await count(h.metrics, 'audience')).toBe(1);
  });

  it('ok/discovery: jwks_uri comes from /.well-known/openid-configuration, fetched once', async () => {
    const h = await setup({ discovery: true });
    const token = await h.issuer.getToken();
    await h.verifier.verify(token);
    await h.verifier.verify(token);
    expect(h.issuer.hits).toEqual({ discovery: 1, jwks: 1 });
  });

  it('ok/explicit jwksUri skips discovery', async () => {
    const h = await setup();
    await h.verifier.verify(await h.issuer.getToken());
    expect(h.issuer.hits.discovery).toBe(0);
  });

  it('ok/key rotation: an unknown kid triggers one refresh, rate-limited by the cooldown', async () => {
    const h = await setup();
    await h.verifier.verify(await h.issuer.getToken());
    expect(h.issuer.hits.jwks).toBe(1);
    await h.issuer.rotateKeys();
    const rotated = await h.issuer.getToken();
    // Within the cooldown of the last fetch: no new fetch, fail closed.
    expect(await rejection(h.verifier.verify(rotated))).toEqual({
      code: 'MESHAUTH_ERR_TOKEN_INVALID',
      reason: 'unknown_kid',
    });
    expect(h.issuer.hits.jwks).toBe(1);
    h.advance(31_000);
    expect((await h.verifier.verify(rotated)).sub).toBe('orders-client');
    expect(h.issuer.hits.jwks).toBe(2);
    // A flood of unknown kids right after costs nothing more.
    await h.issuer.rotateKeys();
    const again = await h.issuer.getToken();
    for (let i = 0; i < 5; i++) {
      expect((await rejection(h.verifier.verify(again))).reason).toBe('unknown_kid');
    }
    expect(h.issuer.hits.jwks).toBe(2);
  });

  it('ok+fail/issuer down after caching: cached keys keep working, a new kid fails closed', async () => {
    const h = await setup();
    const before = await h.issuer.getToken();
    await h.verifier.verify(before);
    h.issuer.setJwksMode('error');
    await h.issuer.rotateKeys();
    const rotated = await h.issuer.getToken();
    h.advance(31_000);
    expect(await rejection(h.verifier.verify(rotated))).toEqual({
      code: 'MESHAUTH_ERR_TOKEN_INVALID',
      reason: 'unknown_kid',
    });
    expect(h.issuer.hits.jwks).toBe(2);
    expect((await h.verifier.verify(before)).sub).toBe('orders-client');
    // Garbage instead of an error: same outcome, the old keys stay.
    h.issuer.setJwksMode('garbage');
    expect(await h.verifier.jwksCache(h.issuer.issuer)?.refresh()).toBe(false);
    expect(h.verifier.jwksCache(h.issuer.issuer)?.stats.keys).toBe(1);
    expect((await h.verifier.verify(before)).sub).toBe('orders-client');
  });

  it('fail/cached keys older than max-stale are not used while the issuer stays down', async () => {
    const h = await setup({ tunables: { jwksMaxStaleMs: 60_000 } });
    const token = await h.issuer.getToken();
    await h.verifier.verify(token);
    h.issuer.setJwksMode('error');
    h.advance(61_000);
    expect(await rejection(h.verifier.verify(token))).toEqual({
      code: 'MESHAUTH_ERR_TOKEN_INVALID',
      reason: 'jwks_unavailable',
    });
    h.issuer.setJwksMode('ok');
    h.advance(31_000);
    expect((await h.verifier.verify(token)).sub).toBe('orders-client');
  });

  it('fail/JWKS down at start-up fails closed and retries only after the cooldown', async () => {
    const h = await setup();
    h.issuer.setJwksMode('error');
    const token = await h.issuer.getToken();
    expect((await rejection(h.verifier.verify(token))).reason).toBe('jwks_unavailable');
    expect((await rejection(h.verifier.verify(token))).reason).toBe('jwks_unavailable');
    expect(h.issuer.hits.jwks).toBe(1);
    h.issuer.setJwksMode('ok');
    h.advance(31_000);
    expect((await h.verifier.verify(token)).sub).toBe('orders-client');
    expect(await count(h.metrics, 'jwks_unavailable')).toBe(2);
  });

  it('fail/JWKS slow: the fetch times out, every waiting request fails closed, one fetch for all (single flight)', async () => {
    const h = await setup({ tunables: { jwksFetchTimeoutMs: 300 } });
    h.issuer.setJwksMode('hang');
    const token = await h.issuer.getToken();
    const results = await Promise.all(Array.from({ length: 20 }, () => rejection(h.verifier.verify(token))));
    expect(new Set(results.map((r) => r.reason))).toEqual(new Set(['jwks_unavailable']));
    expect(h.issuer.hits.jwks).toBe(1);
    expect(await count(h.metrics, 'jwks_unavailable')).toBe(20);
  });

  it('ok/start() prefetches keys in the background', async () => {
    const h = await setup();
    h.verifier.start();
    await h.verifier.jwksCache(h.issuer.issuer)?.refresh();
    expect(h.verifier.jwksCache(h.issuer.issuer)?.stats.keys).toBe(1);
    const fetches = h.issuer.hits.jwks;
    await h.verifier.verify(await h.issuer.getToken());
    expect(h.issuer.hits.jwks).toBe(fetches);
  });
});

describe('OIDC discovery hardening (J20)', () => {
  async function fakeIssuer(discovery: (origin: string) => object): Promise<string> {
    const { publicKey } = await generateKeyPair('ES256');
    const keys = [{ ...(await exportJWK(publicKey)), kid: 'k1', use: 'sig' }];
    const jwks = JSON.stringify({ keys });
    const big = JSON.stringify({ keys, pad: 'x'.repeat(300 * 1024) });
    const server = createServer((req, res) => {
      const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      if (req.url === '/.well-known/openid-configuration') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(discovery(origin)));
      } else if (req.url === '/jwks') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(jwks);
      } else if (req.url === '/big') {
        // A valid JWKS padded to 300 KiB, chunked (no content-length): the cap must hold while streaming.
        res.writeHead(200, { 'content-type': 'application/json' });
        for (let i = 0; i < big.length; i += 16_384) res.write(big.slice(i, i + 16_384));
        res.end();
      } else if (req.url === '/big-declared') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(big.length) });
        res.end(big);
      } else if (req.url === '/moved') {
        res.writeHead(302, { location: '/jwks' }).end();
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    teardown.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  const cases: [string, (origin: string) => object][] = [
    ['ok/discovery on the issuer origin', (origin) => ({ issuer: origin, jwks_uri: `${origin}/jwks` })],
    ['fail/discovery issuer differs', (origin) => ({ issuer: `${origin}/`, jwks_uri: `${origin}/jwks` })],
    ['fail/jwks_uri on another origin', () => ({ issuer: 'ISSUER', jwks_uri: 'http://127.0.0.2:1/jwks' })],
    ['fail/jwks_uri not https', (origin) => ({ issuer: origin, jwks_uri: 'http://example.com/jwks' })],
    ['fail/jwks_uri redirects', (origin) => ({ issuer: origin, jwks_uri: `${origin}/moved` })],
  ];
  for (const path of ['/big', '/big-declared']) {
    it(`fail/JWKS response above the size cap (${path})`, async () => {
      const origin = await fakeIssuer((o) => ({ issuer: o, jwks_uri: `${o}/jwks` }));
      const lines: string[] = [];
      const logger = createLogger({ level: 'warn', destination: { write: (line: string) => lines.push(line) } });
      const config = (jwksUri: string) => ({
        required: false,
        issuers: [{ issuer: origin, audiences: ['shop'], algorithms: ['ES256'], jwksUri }],
        vouchers: [],
        claims: [],
      });
      const verifier = new EndUserVerifier({ config: config(`${origin}${path}`), logger });
      teardown.push(() => verifier.close());
      expect(await verifier.jwksCache(origin)?.refresh()).toBe(false);
      expect(lines.map((l) => JSON.parse(l).failure)).toEqual(['too_large']);
      // The same document under a larger cap is fine: the cap is what refused it.
      const roomy = new EndUserVerifier({
        config: config(`${origin}${path}`),
        tunables: { jwksMaxResponseBytes: 1024 * 1024 },
      });
      teardown.push(() => roomy.close());
      expect(await roomy.jwksCache(origin)?.refresh()).toBe(true);
    });
  }

  for (const [name, discovery] of cases) {
    it(name, async () => {
      const origin = await fakeIssuer((o) => {
        const doc = discovery(o) as { issuer: string };
        return doc.issuer === 'ISSUER' ? { ...doc, issuer: o } : doc;
      });
      const verifier = new EndUserVerifier({
        config: {
          required: false,
          issuers: [{ issuer: origin, audiences: ['shop'], algorithms: ['ES256'] }],
          vouchers: [],
          claims: [],
        },
      });
      teardown.push(() => verifier.close());
      const ok = name.startsWith('ok/');
      expect(await verifier.jwksCache(origin)?.refresh()).toBe(ok);
      expect(verifier.jwksCache(origin)?.stats.keys).toBe(ok ? 1 : 0);
    });
  }
});
