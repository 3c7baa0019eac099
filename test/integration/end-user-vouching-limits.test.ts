// What the first sidecar refuses before it vouches for an end user, on the mTLS inbound and the external listener.
// Before: (1) a user whose claims were too large for a passport (hundreds of `groups`) was vouched for, and the
// failure came later, as a 431 at the app or a passport `too_large` at the next sidecar; now it is a 401
// `claims_too_large` here, counted and logged once. (2) A JWT whose header segment did not start `eyJ` (junk,
// padded) sent under another scheme passed to the app unverified next to no `x-meshauth-user`; now it is a 400.
// (3) A token whose `exp` lay years ahead was vouched for until then; past `inbound.endUser.maxTokenLifetime` it is
// a 401 `lifetime`.
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EXTERNAL_ISSUER,
  EXTERNAL_TD,
  type ExternalSidecar,
  startExternalSidecar,
} from '../helpers/external-sidecar.js';
import { logLines } from '../helpers/log-lines.js';
import { rawTlsExchange } from '../helpers/raw-tls.js';
import type { TestSvid } from '../helpers/test-ca.js';

let external: ExternalSidecar;
let client: TestSvid;
const log = logLines('api', 'info');

beforeAll(async () => {
  external = await startExternalSidecar({ logger: log.logger, maxTokenLifetime: '1h' });
  client = await external.ca.issue({ id: `spiffe://${EXTERNAL_TD}/ns/a/sa/client` });
});

afterAll(async () => {
  await external?.close();
});

/** A token of the sidecar's issuer for `alice` with `count` group IDs (36 bytes each, like Entra ID's). */
function tokenWithGroups(count: number, expiresIn = '10m'): Promise<string> {
  const groups = Array.from(
    { length: count },
    (_, i) => `0b6c${String(i).padStart(4, '0')}-7d1e-4a2b-9c3d-1234567890ab`,
  );
  return new SignJWT({ groups })
    .setProtectedHeader({ alg: 'ES256', kid: external.key.kid, typ: 'JWT' })
    .setIssuer(EXTERNAL_ISSUER)
    .setAudience('api')
    .setSubject('alice')
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(external.key.privateKey);
}

type Listener = 'inbound' | 'external';
const LISTENERS = ['inbound', 'external'] as const;

/** One request on `listener` with an `authorization` header: its status, error code, new log lines, app calls. */
async function send(listener: Listener, authorization: string) {
  const port = listener === 'inbound' ? external.sc.sidecar.inboundPort : (external.sc.sidecar.externalPort as number);
  const fromLine = log.lines.length;
  const fromSeen = external.app.seen.length;
  const reply = await rawTlsExchange(
    port,
    client,
    external.ca.rootPem,
    `GET /orders HTTP/1.1\r\nHost: api.mesh\r\nAuthorization: ${authorization}\r\nConnection: close\r\n\r\n`,
  );
  const body = reply.slice(reply.indexOf('\r\n\r\n') + 4);
  return {
    status: Number(reply.slice(9, 12)),
    head: reply.slice(0, reply.indexOf('\r\n\r\n')),
    code: body.startsWith('{') ? (JSON.parse(body) as { code?: string }).code : undefined,
    lines: log.lines.slice(fromLine),
    seen: external.app.seen.slice(fromSeen),
  };
}

async function tokenResults(): Promise<Record<string, number>> {
  const values = (await external.sc.metrics.tokenVerifications.get()).values;
  return Object.fromEntries(values.map((v) => [String(v.labels.result), v.value]));
}

describe('end-user claims: refused, never truncated, by the sidecar that would vouch for them', () => {
  it.each(LISTENERS)('ok/%s: a user with 20 groups is vouched for', async (listener) => {
    const result = await send(listener, `Bearer ${await tokenWithGroups(20)}`);
    expect(result.status).toBe(200);
    expect(result.seen).toHaveLength(1);
    expect(result.seen[0]?.headers['x-meshauth-passport']).toBeDefined();
  });

  it.each(LISTENERS)(
    'fail/%s: a user with 200 groups (8 KB of claims) → 401 claims_too_large, one log line, the app never called',
    async (listener) => {
      const before = await tokenResults();
      const result = await send(listener, `Bearer ${await tokenWithGroups(200)}`);
      expect(result.status).toBe(401);
      expect(result.code).toBe('MESHAUTH_ERR_TOKEN_INVALID');
      expect(result.head).toMatch(/\r\nwww-authenticate: Bearer realm="meshauth", error="invalid_token"/i);
      expect(result.seen).toEqual([]);
      expect(result.lines).toHaveLength(1);
      expect(result.lines[0]).toMatchObject({
        direction: listener,
        code: 'MESHAUTH_ERR_TOKEN_INVALID',
        reason: 'claims_too_large',
        issuer: EXTERNAL_ISSUER,
      });
      // Counted once, as the refusal: not also as a verified token.
      const after = await tokenResults();
      expect((after.claims_too_large ?? 0) - (before.claims_too_large ?? 0)).toBe(1);
      expect(after.ok ?? 0).toBe(before.ok ?? 0);
    },
  );
});

describe('a JWT under another scheme is refused whatever its header segment', () => {
  const claims = Buffer.from(JSON.stringify({ sub: 'admin', iss: EXTERNAL_ISSUER, aud: 'api' })).toString('base64url');
  it.each(LISTENERS)('fail/%s: `Bearer,AAAA.<claims>.` → 400, the app never called', async (listener) => {
    const result = await send(listener, `Bearer,AAAA.${claims}.`);
    expect(result.status).toBe(400);
    expect(result.code).toBe('MESHAUTH_ERR_TOKEN_REQUEST_MALFORMED');
    expect(result.seen).toEqual([]);
    expect(result.lines).toHaveLength(1);
    expect(result.lines[0]).toMatchObject({ direction: listener, reason: 'scheme' });
  });

  it.each(LISTENERS)('ok/%s: Digest credentials with dotted values are left to the app', async (listener) => {
    // The external listener requires a bearer token: there Digest is a 401, not the 400 of a JWT.
    const result = await send(listener, 'Digest username="a.b", realm="api.example.com", uri="/dir/index.html"');
    expect(result.status).toBe(listener === 'inbound' ? 200 : 401);
  });
});

describe('a token expiring further ahead than inbound.endUser.maxTokenLifetime (1h here) is not vouched for', () => {
  it.each(LISTENERS)('ok/%s: a token for 50 minutes', async (listener) => {
    const result = await send(listener, `Bearer ${await tokenWithGroups(1, '50m')}`);
    expect(result.status).toBe(200);
    expect(result.seen).toHaveLength(1);
  });

  it.each(LISTENERS)(
    'fail/%s: a token for 2 hours → 401 lifetime, one log line, the app never called',
    async (listener) => {
      const before = await tokenResults();
      const result = await send(listener, `Bearer ${await tokenWithGroups(1, '2h')}`);
      expect(result.status).toBe(401);
      expect(result.code).toBe('MESHAUTH_ERR_TOKEN_INVALID');
      expect(result.head).toMatch(/\r\nwww-authenticate: Bearer realm="meshauth", error="invalid_token"/i);
      expect(result.seen).toEqual([]);
      expect(result.lines).toHaveLength(1);
      expect(result.lines[0]).toMatchObject({ direction: listener, reason: 'lifetime', issuer: EXTERNAL_ISSUER });
      expect(((await tokenResults()).lifetime ?? 0) - (before.lifetime ?? 0)).toBe(1);
    },
  );
});
