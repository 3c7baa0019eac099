// API clients and the edge rules: a client-credentials token from the same provider reaches the app two hops down
// as its own subject; API calls without credentials get 401 with WWW-Authenticate (never a redirect); bad tokens
// (alg none, HS256 keyed with the public key) are refused; route requirements and the edge policy (default deny)
// decide with one log line per deny; the session is renewed with the refresh token; the certificate is re-read.
import { readFileSync, writeFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScriptedBrowser } from '../helpers/browser.js';
import { ALICE, API_CLIENT, type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';
import { available, runCommand } from '../helpers/sidecar-harness.js';
import { waitFor } from '../helpers/wait.js';

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

describe('gateway API clients and edge rules', () => {
  let mesh: GatewayMesh;
  let agent: Agent;
  beforeAll(async () => {
    mesh = await startGatewayMesh({
      webForwardsToken: true, // so the test can see what the gateway sends; the sidecar must opt in as well
      gateway: (base, files) => {
        const web = (base.routes as Record<string, unknown>[])[0] as Record<string, unknown>;
        const policy = files.write(
          'edge-policy.yaml',
          `apiVersion: meshauth.dev/v1
kind: Policy
metadata: { name: edge }
exposeRuleNames: true
rules:
  - name: signed-in-users
    action: allow
    to: { paths: ["/shop/*", "/shop", "/admin/*"] }
    when: { user: { iss: ["ISSUER"] } }
  - name: public-health
    action: allow
    to: { paths: ["/health"] }
  - name: no-admin-for-customers
    action: deny
    to: { paths: ["/admin/*"] }
    when: { user: { groups: [customers] } }
`.replace('ISSUER', (base.oidc as { issuer: string }).issuer),
        );
        return {
          ...base,
          policy,
          routes: [
            { ...web, name: 'admin', match: { host: '127.0.0.1', pathPrefix: '/admin' }, roles: ['admin'] },
            {
              ...web,
              name: 'reports',
              match: { host: '127.0.0.1', pathPrefix: '/shop/reports' },
              scopes: ['orders:write'],
            },
            {
              ...web,
              name: 'tenant',
              match: { host: '127.0.0.1', pathPrefix: '/shop/tenant' },
              claims: { tenant: { equals: 'acme' }, groups: { includes: 'customers' } },
            },
            { ...web, name: 'health', match: { host: '127.0.0.1', pathPrefix: '/health' }, login: 'none' },
            { ...web, name: 'tokens', match: { host: '127.0.0.1', pathPrefix: '/shop/tokens' }, forwardToken: true },
            { ...web, name: 'optional', match: { host: '127.0.0.1', pathPrefix: '/public' }, login: 'optional' },
            web,
          ],
        };
      },
    });
    agent = new Agent({ connect: { ca: mesh.ca.rootPem } });
  });
  afterAll(async () => {
    await agent?.close();
    await mesh?.close();
  });

  const call = async (path: string, headers: Record<string, string> = {}, method = 'GET') => {
    const response = await request(`${mesh.origin}${path}`, { dispatcher: agent, headers, method: method as 'GET' });
    const text = await response.body.text();
    return { status: response.statusCode, headers: response.headers, text, json: () => JSON.parse(text) };
  };

  it('ok/a client-credentials token from the provider reaches the app with the chain [gateway, web]', async () => {
    const token = await mesh.provider.provider.getToken(API_CLIENT.clientId, 'orders:read');
    const answer = await call('/shop/orders/7', { authorization: `Bearer ${token}` });
    expect(answer.status, answer.text).toBe(200);
    const seen = answer.json();
    expect(seen.user.sub).toBe(API_CLIENT.clientId);
    expect(seen.authorization).toBeUndefined();
    expect(seen.next.chain).toEqual([mesh.gatewayId, mesh.webId]);
    expect(seen.next.user.scope).toBe('orders:read');
  });

  for (const [name, headers] of [
    ['accept json', { accept: 'application/json' }],
    ['XMLHttpRequest', { 'x-requested-with': 'XMLHttpRequest' }],
    ['fetch metadata', { 'sec-fetch-mode': 'cors', accept: '*/*' }],
    ['POST', {}],
  ] as const) {
    it(`fail/an API call without credentials (${name}) gets 401 with WWW-Authenticate, not a redirect`, async () => {
      const answer = await call('/shop/orders/7', headers, name === 'POST' ? 'POST' : 'GET');
      expect(answer.status).toBe(401);
      expect(answer.headers['www-authenticate']).toBe('Bearer realm="meshauth"');
      expect(answer.headers.location).toBeUndefined();
      expect(answer.json().code).toBe('MESHAUTH_ERR_LOGIN_REQUIRED');
    });
  }

  it('ok/a browser navigation without a session is sent to the provider (302)', async () => {
    const answer = await call('/shop/orders/7', { accept: 'text/html', 'sec-fetch-mode': 'navigate' });
    expect(answer.status).toBe(302);
    expect(String(answer.headers.location)).toContain(`${mesh.provider.url}/auth?`);
    expect(String(answer.headers.location)).toContain('code_challenge_method=S256');
    const setCookie = String(answer.headers['set-cookie']);
    expect(setCookie).toMatch(/__Host-meshauth-login-[A-Za-z0-9_-]{12}=/);
    expect(setCookie).toMatch(/Path=\/; Secure; HttpOnly; SameSite=Lax/);
  });

  it('fail/alg none and HS256 keyed with the public key are refused as invalid tokens', async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: mesh.provider.url, aud: 'shop-api', sub: 'mallory', iat: now, exp: now + 300 };
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
    const jwks = (await (await fetch(`${mesh.provider.url}/jwks`)).json()) as { keys: object[] };
    const { createHmac } = await import('node:crypto');
    const input = `${b64({ alg: 'HS256', typ: 'JWT', kid: (jwks.keys[0] as { kid: string }).kid })}.${b64(claims)}`;
    const hs = `${input}.${createHmac('sha256', JSON.stringify(jwks.keys[0])).update(input).digest('base64url')}`;
    for (const [token, alg] of [
      [none, 'none'],
      [hs, 'HS256'],
    ] as const) {
      const from = mesh.log.lines.length;
      const answer = await call('/shop/orders/7', { authorization: `Bearer ${token}` });
      expect(answer.status).toBe(401);
      expect(answer.headers['www-authenticate']).toContain('error="invalid_token"');
      // One log line per refusal, naming what the token claimed.
      const lines = mesh.log.lines.slice(from);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ event: 'gateway_deny', code: 'MESHAUTH_ERR_TOKEN_INVALID', alg });
    }
  });

  it('fail/two Authorization lines are refused (400) before either token is verified', async () => {
    const malformed = async () =>
      (await mesh.metrics.tokenVerifications.get()).values.find((v) => v.labels.result === 'malformed_header')?.value ??
      0;
    const before = await malformed();
    const token = await mesh.provider.provider.getToken(API_CLIENT.clientId, 'orders:read');
    const response = await request(`${mesh.origin}/shop/orders/7`, {
      dispatcher: agent,
      headers: ['authorization', `Bearer ${token}`, 'authorization', 'Bearer other'],
    });
    const body = await response.body.text();
    expect(response.statusCode, body).toBe(400);
    expect(JSON.parse(body).code).toBe('MESHAUTH_ERR_TOKEN_REQUEST_MALFORMED');
    expect((await malformed()) - before).toBe(1);
  });

  it('fail/route requirements: roles, scopes; ok/claims by dotted path', async () => {
    const token = await mesh.provider.provider.getToken(API_CLIENT.clientId, 'orders:read');
    const auth = { authorization: `Bearer ${token}` };
    const reports = await call('/shop/reports/1', auth);
    expect(reports.status).toBe(403);
    expect(reports.json().rule).toBe('route-scopes');
    expect(reports.headers['www-authenticate']).toContain('insufficient_scope');
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    await browser.signIn(`${mesh.origin}/shop`, ALICE.username, ALICE.password);
    const admin = await browser.fetch(`${mesh.origin}/admin/users`);
    expect(admin.status).toBe(403);
    expect(JSON.parse(admin.body).rule).toBe('route-roles');
    const tenant = await browser.fetch(`${mesh.origin}/shop/tenant/home`);
    expect(tenant.status).toBe(200);
    expect((await call('/shop/tenant/home', auth)).status).toBe(403); // the API client has no tenant claim
    expect(mesh.log.find({ event: 'gateway_deny', rule: 'route-roles' })).toHaveLength(1);
    await browser.close();
  });

  it('ok/login none and optional routes; fail/default deny of the edge policy', async () => {
    const health = await call('/health', { accept: 'application/json' });
    expect(health.status).toBe(200);
    expect(health.json().user).toBeUndefined();
    const optional = await call('/public/x', { accept: 'application/json' });
    expect(optional.status).toBe(403); // no policy rule allows /public: default deny
    expect(optional.json().rule).toBe('default-deny');
    expect(mesh.log.find({ msg: 'gateway deny', rule: 'default-deny' }).length).toBeGreaterThanOrEqual(1);
    const decisions = (await mesh.metrics.gatewayDecisions.get()).values;
    expect(decisions).toContainEqual(
      expect.objectContaining({ labels: { route: 'optional', decision: 'deny', rule: 'default-deny' } }),
    );
  });

  it('fail/the session cookie and Authorization never reach the service; identity headers from outside are dropped', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    await browser.signIn(`${mesh.origin}/shop`, ALICE.username, ALICE.password);
    browser.setCookie('127.0.0.1', 'theme', 'light');
    const page = await browser.fetch(`${mesh.origin}/shop/x`, {
      headers: {
        'x-meshauth-user': b64({ sub: 'root' }),
        'x-forwarded-for': '10.0.0.1',
      },
    });
    const seen = JSON.parse(page.body);
    expect(seen.user.sub).toBe('alice');
    expect(seen.cookie).toContain('theme=light');
    expect(seen.cookie).not.toContain('__Host-meshauth');
    expect(seen.authorization).toBeUndefined();
    expect(seen.forwardedHost).toBe(`127.0.0.1:${mesh.gateway.port}`);
    expect(seen.host).toBe('web');
    const stripped = (await mesh.metrics.identityHeadersStripped.get()).values;
    expect(stripped).toContainEqual(expect.objectContaining({ labels: { direction: 'edge' }, value: 1 }));
    expect(mesh.log.find({ event: 'identity_headers_stripped', direction: 'edge', route: 'web' }).length).toBe(1);
    await browser.close();
  });

  it('fail/the /.meshauth/ namespace is never forwarded', async () => {
    const token = await mesh.provider.provider.getToken(API_CLIENT.clientId, 'orders:read');
    const answer = await call('/.meshauth/anything', { authorization: `Bearer ${token}` });
    expect(answer.status).toBe(404);
    expect(answer.json().code).toBe('MESHAUTH_ERR_EDGE_NO_ROUTE');
  });

  it('fail/a service cannot set the gateway session cookie (its other cookies pass)', async () => {
    const token = await mesh.provider.provider.getToken(API_CLIENT.clientId, 'orders:read');
    const answer = await call('/shop/fixation', { authorization: `Bearer ${token}` });
    expect(answer.status).toBe(200);
    const setCookie = [answer.headers['set-cookie']].flat().join('\n');
    expect(setCookie).toContain('app-pref=dark');
    expect(setCookie).not.toContain('__Host-meshauth');
  });

  it('ok/forwardToken (opt-in, weaker) passes the access token; other routes never do', async () => {
    const token = await mesh.provider.provider.getToken(API_CLIENT.clientId, 'orders:read');
    const forwarded = (await call('/shop/tokens/1', { authorization: `Bearer ${token}` })).json();
    expect(forwarded.authorization).toBe(`Bearer ${token}`);
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    await browser.signIn(`${mesh.origin}/shop`, ALICE.username, ALICE.password);
    const page = JSON.parse((await browser.fetch(`${mesh.origin}/shop/tokens/2`)).body);
    expect(page.authorization).toMatch(/^Bearer [A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(page.user.sub).toBe('alice');
    expect(JSON.parse((await browser.fetch(`${mesh.origin}/shop/x`)).body).authorization).toBeUndefined();
    await browser.close();
  });

  it.runIf(available('curl'))(
    'ok/curl: 401 with WWW-Authenticate for an API call, 302 for a page, 200 with a token',
    async () => {
      const token = await mesh.provider.provider.getToken(API_CLIENT.clientId, 'orders:read');
      const ca = mesh.files.write('root.pem', mesh.ca.rootPem);
      const curl = (...args: string[]) =>
        runCommand('curl', [
          '-s',
          '-o',
          '/dev/null',
          '-w',
          '%{http_code} %{header_json}',
          '--cacert',
          ca,
          ...args,
          `${mesh.origin}/shop/orders/1`,
        ]);
      const api = await curl('-H', 'Accept: application/json');
      expect(api.stdout.startsWith('401 ')).toBe(true);
      expect(api.stdout).toContain('Bearer realm=\\"meshauth\\"');
      expect((await curl('-H', 'Accept: text/html', '-H', 'Sec-Fetch-Mode: navigate')).stdout.startsWith('302 ')).toBe(
        true,
      );
      expect((await curl('-H', `Authorization: Bearer ${token}`)).stdout.startsWith('200 ')).toBe(true);
      expect((await curl('--http2', '-H', `Authorization: Bearer ${token}`)).stdout.startsWith('200 ')).toBe(true);
      // A request body streams through over HTTP/2 too.
      const post = await curl(
        '--http2',
        '-X',
        'POST',
        '--data-binary',
        'x'.repeat(100_000),
        '-H',
        `Authorization: Bearer ${token}`,
      );
      expect(post.stdout.startsWith('200 ')).toBe(true);
    },
  );

  it('ok/the server certificate is re-read when its files change', async () => {
    const serial = () =>
      new Promise<string>((resolve, reject) => {
        const socket = tlsConnect(
          { host: '127.0.0.1', port: mesh.gateway.port, ca: mesh.ca.rootPem, checkServerIdentity: () => undefined },
          () => {
            resolve(socket.getPeerX509Certificate()?.serialNumber ?? '');
            socket.destroy();
          },
        );
        socket.on('error', reject);
      });
    const before = await serial();
    const next = await mesh.ca.issue({ id: mesh.ca.idFor('/ns/edge/sa/public'), ipAddresses: ['127.0.0.1'] });
    const certFile = `${mesh.files.dir}/gateway.crt`;
    const keyFile = `${mesh.files.dir}/gateway.key`;
    writeFileSync(keyFile, next.keyPem);
    writeFileSync(certFile, next.chainPem);
    const after = await waitFor(
      'the gateway to serve the new certificate',
      async () => {
        const now = await serial();
        return now === before ? undefined : now;
      },
      5_000,
    );
    expect(after).not.toBe(before);
    // A broken pair keeps the working certificate.
    writeFileSync(keyFile, 'not a key');
    expect(mesh.gateway.reloadCertificate()).toBe(false);
    expect(await serial()).toBe(after);
    expect(readFileSync(certFile, 'utf8')).toBe(next.chainPem);
  });
});

describe('gateway session renewal', () => {
  let mesh: GatewayMesh;
  beforeAll(async () => {
    // refreshBefore longer than the access token's life: every request renews (what happens near expiry).
    mesh = await startGatewayMesh({
      gateway: (base) => ({ ...base, oidc: { ...(base.oidc as object), refreshBefore: '10m' } }),
    });
  });
  afterAll(async () => {
    await mesh?.close();
  });

  it('ok/the session is renewed with the refresh token before the access token expires', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    await browser.signIn(`${mesh.origin}/shop`, ALICE.username, ALICE.password);
    const first = browser.cookie('__Host-meshauth')?.value;
    const page = await browser.fetch(`${mesh.origin}/shop/again`);
    expect(page.status).toBe(200);
    expect(JSON.parse(page.body).next.user.sub).toBe('alice');
    expect(browser.cookie('__Host-meshauth')?.value).not.toBe(first);
    const refreshes = (await mesh.metrics.gatewaySessionRefreshes.get()).values;
    expect(refreshes).toContainEqual(expect.objectContaining({ labels: { result: 'ok' } }));
    await browser.close();
  });

  it('ok/parallel requests near expiry renew once (a rotated refresh token is never used twice)', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    await browser.signIn(`${mesh.origin}/shop`, ALICE.username, ALICE.password);
    const ok = async () =>
      (await mesh.metrics.gatewaySessionRefreshes.get()).values.find((v) => v.labels.result === 'ok')?.value ?? 0;
    const before = await ok();
    const pages = await Promise.all([1, 2, 3, 4].map((i) => browser.fetch(`${mesh.origin}/shop/parallel/${i}`)));
    expect(pages.map((p) => p.status)).toEqual([200, 200, 200, 200]);
    // At most one renewal for the four (none when this refresh token was renewed within the last minute).
    expect((await ok()) - before).toBeLessThanOrEqual(1);
    expect(pages.every((p) => String(p.headers['set-cookie']).includes('__Host-meshauth='))).toBe(true);
    const failed = (await mesh.metrics.gatewaySessionRefreshes.get()).values.filter((v) => v.labels.result !== 'ok');
    expect(failed).toEqual([]);
    await browser.close();
  });
});
