// Four ways a request's identity or policy view differed from what the app receives (found by an outside audit;
// each failed before its fix). Real sockets on 127.0.0.1: a test mTLS client → the sidecar's inbound → the app.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endUserFromClaims, parseUserHeader } from '../../src/authn/index.js';
import { mintOriginPassport, ownOrigin, wrapPassport } from '../../src/authn/passport/index.js';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { SpiffeId } from '../../src/identity/index.js';
import { endUserToken, jwksText, type SigningKey, signingKey } from '../helpers/end-user-keys.js';
import { rawTlsExchange } from '../helpers/raw-tls.js';
import { startApp, startTestSidecar, type TestApp, type TestSidecar } from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';

const TD = 'example.org';
const ISS = 'https://idp.example.org';
const GATEWAY = `spiffe://${TD}/ns/edge/sa/gateway`;
const SVC = `spiffe://${TD}/ns/shop/sa/svc`;
const CALLER = `spiffe://${TD}/ns/shop/sa/caller`;

let ca: TestCa;
let dir: string;
let idpKey: SigningKey;
let attackerKey: SigningKey;
let app: TestApp;
let svc: TestSidecar;
let gateway: TestSvid;
let caller: TestSvid;
const closers: Array<() => Promise<void>> = [];

beforeAll(async () => {
  ca = await TestCa.create(TD);
  dir = mkdtempSync(join(tmpdir(), 'meshauth-authz-edges-'));
  closers.push(async () => rmSync(dir, { recursive: true, force: true }));
  idpKey = await signingKey('idp-1');
  attackerKey = await signingKey('idp-1'); // same kid, not published
  writeFileSync(join(dir, 'jwks.json'), jwksText(idpKey));
  const policy = join(dir, 'policy.yaml');
  writeFileSync(
    policy,
    [
      'apiVersion: meshauth.dev/v1',
      'kind: Policy',
      'exposeRuleNames: true',
      'rules:',
      '  - name: no-admin-reads',
      '    action: deny',
      '    to: { methods: [GET], paths: ["/admin", "/admin/*"] }',
      '  - name: no-admin-role',
      '    action: deny',
      '    when: { headers: { x-role: ["admin"] } }',
      '  - name: tenant-a-only',
      '    action: allow',
      '    to: { paths: ["/tenant/*"] }',
      '    when: { headers: { x-tenant: ["a"] } }',
      '  - name: rest',
      '    action: allow',
      '    to: { paths: ["/admin", "/admin/*", "/public/*", "/pay/*"] }',
    ].join('\n'),
  );
  app = await startApp();
  closers.push(() => app.close());
  svc = await startTestSidecar(
    ca,
    SVC,
    sidecarConfigFromObject(
      {
        trustDomain: TD,
        ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent', token: '/nonexistent' },
        inbound: {
          listen: '127.0.0.1:0',
          app: `127.0.0.1:${app.port}`,
          policy,
          endUser: {
            issuers: [
              { issuer: ISS, jwksUri: `file://${join(dir, 'jwks.json')}`, audiences: ['shop'], algorithms: ['ES256'] },
            ],
            vouchers: [GATEWAY],
            claims: ['scope'],
            // The service must call an external API on the user's behalf (docs/gateway.md `forwardToken`).
            forwardOriginalToken: true,
          },
        },
        outbound: { listen: '127.0.0.1:0', routes: {} },
        admin: { listen: '127.0.0.1:0' },
      },
      'authz-edges-test',
    ),
  );
  closers.push(() => svc.sidecar.close(0));
  gateway = await ca.issue({ id: GATEWAY });
  caller = await ca.issue({ id: CALLER });
});

afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
});

function mtls(svid: TestSvid): Agent {
  const agent = new Agent({
    connect: { cert: svid.chainPem, key: svid.keyPem, ca: ca.rootPem, checkServerIdentity: () => undefined },
  });
  closers.push(() => agent.close());
  return agent;
}

/** What the gateway sidecar sends for user `sub`: link (gateway → svc) + origin (gateway). */
function passportFor(sub: string): string {
  const now = new Date();
  const user = endUserFromClaims({ sub, iss: ISS, exp: Math.floor(now.getTime() / 1000) + 600 }, []);
  if (user === undefined) throw new Error('user');
  const origin = mintOriginPassport({ svid: gateway.svid, now, user });
  return wrapPassport({
    svid: gateway.svid,
    audience: SpiffeId.parse(SVC),
    now,
    received: ownOrigin(origin, gateway.svid.id, user.expiresAt),
  });
}

async function raw(bytes: string): Promise<{ status: number; text: string }> {
  const text = await rawTlsExchange(svc.sidecar.inboundPort, caller, ca.rootPem, bytes);
  return { status: Number(text.slice(9, 12)), text };
}

describe('forwardOriginalToken: a token beside a passport reaches the app only verified and naming the same user', () => {
  async function send(headers: Record<string, string>) {
    const before = app.seen.length;
    const response = await request(`https://127.0.0.1:${svc.sidecar.inboundPort}/pay/1`, {
      dispatcher: mtls(gateway),
      headers,
    });
    await response.body.text();
    return { status: response.statusCode, seen: app.seen.slice(before) };
  }

  it('ok/a forged token (unpublished key) is refused on its own', async () => {
    const forged = await endUserToken(attackerKey, ISS, 'shop', 'admin');
    const { status, seen } = await send({ authorization: `Bearer ${forged}` });
    expect(status).toBe(401);
    expect(seen).toEqual([]);
  });

  it('ok/the same forged token beside a valid passport for alice is refused too (it reached the app before)', async () => {
    const forged = await endUserToken(attackerKey, ISS, 'shop', 'admin');
    const { status, seen } = await send({
      authorization: `Bearer ${forged}`,
      'x-meshauth-passport': passportFor('alice'),
    });
    expect(status).toBe(401);
    expect(seen).toEqual([]);
  });

  it("ok/bob's valid token beside alice's passport is refused", async () => {
    const bobs = await endUserToken(idpKey, ISS, 'shop', 'bob');
    const { status, seen } = await send({
      authorization: `Bearer ${bobs}`,
      'x-meshauth-passport': passportFor('alice'),
    });
    expect(status).toBe(401);
    expect(seen).toEqual([]);
  });

  it("ok/alice's valid token beside alice's passport reaches the app, with the user from the passport", async () => {
    const token = await endUserToken(idpKey, ISS, 'shop', 'alice');
    const { status, seen } = await send({
      authorization: `Bearer ${token}`,
      'x-meshauth-passport': passportFor('alice'),
    });
    expect(status).toBe(200);
    expect(seen[0]?.headers.authorization).toBe(`Bearer ${token}`);
    expect(parseUserHeader(seen[0]?.headers['x-meshauth-user'] as string)?.sub).toBe('alice');
  });
});

describe('a deny on GET also denies HEAD', () => {
  it('ok/GET /admin/users is denied', async () => {
    const r = await raw('GET /admin/users HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n');
    expect(r.status).toBe(403);
  });

  it('ok/HEAD /admin/users is denied and never reaches the app (it did before)', async () => {
    const before = app.seen.length;
    const r = await raw('HEAD /admin/users HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n');
    expect(app.seen.slice(before).map((s) => `${s.method} ${s.url}`)).toEqual([]);
    expect(r.status).toBe(403);
  });
});

describe("a header the request's Connection names is not read by the policy", () => {
  it('ok/x-tenant: b is denied', async () => {
    const r = await raw('GET /tenant/x HTTP/1.1\r\nHost: svc\r\nx-tenant: b\r\nConnection: close\r\n\r\n');
    expect(r.status).toBe(403);
  });

  it('ok/x-tenant: a is allowed', async () => {
    const r = await raw('GET /tenant/x HTTP/1.1\r\nHost: svc\r\nx-tenant: a\r\nConnection: close\r\n\r\n');
    expect(r.status).toBe(200);
  });

  it('ok/x-tenant: a with "Connection: x-tenant" (removed before the app) is denied (it was allowed before)', async () => {
    const before = app.seen.length;
    const r = await raw('GET /tenant/x HTTP/1.1\r\nHost: svc\r\nx-tenant: a\r\nConnection: close, x-tenant\r\n\r\n');
    expect(r.status).toBe(403);
    expect(app.seen.slice(before)).toEqual([]);
  });
});

describe('request headers whose names hold "_" reach neither the policy nor the app (CGI, WSGI, PHP and Rack read x_role as x-role)', () => {
  it('ok/x-role: admin is denied', async () => {
    const r = await raw('GET /public/x HTTP/1.1\r\nHost: svc\r\nx-role: admin\r\nConnection: close\r\n\r\n');
    expect(r.status).toBe(403);
  });

  it('ok/x_role: admin is dropped before the policy and the app (it passed the deny rule and reached the app before)', async () => {
    const before = app.seen.length;
    const r = await raw('GET /public/x HTTP/1.1\r\nHost: svc\r\nx_role: admin\r\nConnection: close\r\n\r\n');
    expect(r.status).toBe(200);
    expect(app.seen[before]?.headers.x_role).toBeUndefined();
  });

  it('ok/x_tenant: a does not meet an allow condition on x-tenant (a first version read it as x-tenant)', async () => {
    const before = app.seen.length;
    const r = await raw('GET /tenant/x HTTP/1.1\r\nHost: svc\r\nx_tenant: a\r\nConnection: close\r\n\r\n');
    expect(r.status).toBe(403);
    expect(app.seen.slice(before)).toEqual([]);
  });

  it('ok/an identity header spelled with "_" never reaches the app (found by a review)', async () => {
    const before = app.seen.length;
    const r = await raw(
      'GET /public/x HTTP/1.1\r\nHost: svc\r\nx_meshauth_user: {"sub":"admin"}\r\nx_forwarded_client_cert: By=x\r\nConnection: close\r\n\r\n',
    );
    expect(r.status).toBe(200);
    expect(app.seen[before]?.headers.x_meshauth_user).toBeUndefined();
    expect(app.seen[before]?.headers.x_forwarded_client_cert).toBeUndefined();
  });
});
