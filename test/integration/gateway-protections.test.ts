// Each protection of the gateway's sign-in and session, tested against the real sockets: open redirects, login
// CSRF, replayed or swapped code/state, cross-site POSTs, tampered/truncated cookies, rotated-out keys, oversized
// headers, the callback rate limit, and (with a scripted provider) nonce, issuer, audience and algorithm attacks.
import { connect as h2connect } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionCodec } from '../../src/gateway/session.js';
import { keyRingFromSecrets } from '../../src/gateway/session-keys.js';
import { ScriptedBrowser } from '../helpers/browser.js';
import { type FakeOp, type IdTokenMode, startScriptedOpMesh } from '../helpers/fake-op.js';
import { ALICE, GATEWAY_CLIENT, type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';

const SESSION = '__Host-meshauth';

async function counter(mesh: GatewayMesh, metric: 'gatewayLogins' | 'gatewaySessionsRejected', label: string) {
  const values = (await mesh.metrics[metric].get()).values;
  return values.find((v) => Object.values(v.labels).includes(label))?.value ?? 0;
}

/** Follows the sign-in up to (not including) the callback; returns the callback URL. */
async function callbackUrl(browser: ScriptedBrowser, mesh: GatewayMesh, path = '/shop'): Promise<string> {
  const login = await browser.navigate(`${mesh.origin}${path}`);
  const action = /<form method="post" action="([^"]+)"/.exec(login.body)?.[1] as string;
  let page = await browser.fetch(new URL(action, login.url).href, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username: ALICE.username, password: ALICE.password }).toString(),
  });
  for (let i = 0; i < 10; i++) {
    const location = new URL(page.headers.location as string, page.url).href;
    if (location.startsWith(`${mesh.origin}/.meshauth/callback`)) return location;
    page = await browser.fetch(location);
  }
  throw new Error('never reached the callback');
}

describe('gateway protections (real provider)', () => {
  let mesh: GatewayMesh;
  beforeAll(async () => {
    mesh = await startGatewayMesh();
  });
  afterAll(async () => {
    await mesh?.close();
  });

  it('fail/return URL to another origin becomes / (no open redirect)', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    const callback = await callbackUrl(browser, mesh, '//evil.example/steal');
    const done = await browser.fetch(callback);
    expect(done.status).toBe(302);
    expect(done.headers.location).toBe('/');
    await browser.close();
  });

  it('ok/return URL on this origin is kept, with its query', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    const done = await browser.fetch(await callbackUrl(browser, mesh, '/shop/cart?item=7'));
    expect(done.headers.location).toBe('/shop/cart?item=7');
    await browser.close();
  });

  it('fail/login CSRF: a callback this browser did not start is refused', async () => {
    const attacker = new ScriptedBrowser(mesh.ca.rootPem);
    const victim = new ScriptedBrowser(mesh.ca.rootPem);
    const before = await counter(mesh, 'gatewayLogins', 'no_login_state');
    const planted = await victim.fetch(await callbackUrl(attacker, mesh));
    expect(planted.status).toBe(401);
    expect(planted.body).toContain('MESHAUTH_ERR_LOGIN_FAILED');
    expect(victim.cookie(SESSION)).toBeUndefined();
    expect(await counter(mesh, 'gatewayLogins', 'no_login_state')).toBe(before + 1);
    // A victim in the middle of its own sign-in: the attacker's state is not the victim's.
    await victim.fetch(`${mesh.origin}/shop`);
    const attacker2 = new ScriptedBrowser(mesh.ca.rootPem);
    const swapped = await victim.fetch(await callbackUrl(attacker2, mesh));
    await attacker2.close();
    expect(swapped.status).toBe(401);
    expect(victim.cookie(SESSION)).toBeUndefined();
    await attacker.close();
    await victim.close();
  });

  it('ok/two tabs signing in at once both complete (one pre-login cookie per state)', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    const first = await browser.fetch(`${mesh.origin}/shop/tab-a`);
    const second = await browser.fetch(`${mesh.origin}/shop/tab-b`);
    expect(browser.cookiesStartingWith(`${SESSION}-login-`)).toHaveLength(2);
    const a = await browser.submitLogin(
      await browser.navigate(String(first.headers.location)),
      ALICE.username,
      ALICE.password,
    );
    expect(JSON.parse(a.body).path).toBe('/shop/tab-a');
    const b = await browser.navigate(String(second.headers.location));
    expect(b.status).toBe(200);
    expect(JSON.parse(b.body).path).toBe('/shop/tab-b');
    expect(browser.cookiesStartingWith(`${SESSION}-login-`)).toEqual([]);
    await browser.close();
  });

  it('fail/swapped state is refused', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    const callback = new URL(await callbackUrl(browser, mesh));
    callback.searchParams.set('state', 'swapped-state-value');
    const before = await counter(mesh, 'gatewayLogins', 'state_mismatch');
    const page = await browser.fetch(callback.href);
    expect(page.status).toBe(401);
    expect(await counter(mesh, 'gatewayLogins', 'state_mismatch')).toBe(before + 1);
    expect(browser.cookie(SESSION)).toBeUndefined();
    await browser.close();
  });

  it('fail/replayed code: without the pre-login cookie, and with it (the provider refuses a used code)', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    const callback = await callbackUrl(browser, mesh);
    const loginCookie = browser.cookiesStartingWith(`${SESSION}-login-`)[0];
    expect((await browser.fetch(callback)).status).toBe(302);
    expect((await browser.fetch(callback)).status).toBe(401); // the pre-login cookie is gone
    const replayer = new ScriptedBrowser(mesh.ca.rootPem);
    replayer.setCookie('127.0.0.1', loginCookie?.name as string, loginCookie?.value as string);
    const before = await counter(mesh, 'gatewayLogins', 'code_rejected');
    const replay = await replayer.fetch(callback);
    expect(replay.status).toBe(401);
    expect(await counter(mesh, 'gatewayLogins', 'code_rejected')).toBe(before + 1);
    expect(replayer.cookie(SESSION)).toBeUndefined();
    await browser.close();
    await replayer.close();
  });

  it('fail/cross-site POST with the session cookie is refused; same-origin POST passes', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    await browser.signIn(`${mesh.origin}/shop`, ALICE.username, ALICE.password);
    const post = (headers: Record<string, string>) =>
      browser.fetch(`${mesh.origin}/shop/orders`, { method: 'POST', navigate: false, headers, body: 'x=1' });
    const crossSite = await post({ 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' });
    expect(crossSite.status).toBe(403);
    expect(JSON.parse(crossSite.body).code).toBe('MESHAUTH_ERR_CROSS_SITE_REQUEST');
    expect((await post({ origin: 'https://evil.example' })).status).toBe(403);
    expect((await post({})).status).toBe(403); // neither header: refused
    const sameOrigin = await post({
      'sec-fetch-site': 'same-origin',
      origin: mesh.origin,
      'content-type': 'text/plain',
    });
    expect(sameOrigin.status).toBe(200);
    expect(mesh.log.find({ event: 'gateway_deny', rule: 'cross-site' }).length).toBeGreaterThanOrEqual(3);
    await browser.close();
  });

  it('fail/tampered or truncated session cookie → a new sign-in (302 for a page, 401 for an API call), never 500', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    await browser.signIn(`${mesh.origin}/shop`, ALICE.username, ALICE.password);
    const good = browser.cookie(SESSION)?.value as string;
    const flip = `${good.slice(0, 40)}${good[40] === 'A' ? 'B' : 'A'}${good.slice(41)}`;
    for (const [value, reason] of [
      [flip, 'tampered'],
      [good.slice(0, good.length - 10), 'tampered'],
      [good.slice(0, 12), 'malformed'],
      ['%%%not-base64%%%', 'malformed'],
    ] as const) {
      const before = await counter(mesh, 'gatewaySessionsRejected', reason);
      browser.setCookie('127.0.0.1', SESSION, value);
      const page = await browser.fetch(`${mesh.origin}/shop`);
      expect(page.status).toBe(302);
      expect(String(page.headers.location)).toContain('/auth?');
      expect(String(page.headers['set-cookie'])).toContain(`${SESSION}=; Path=/`);
      expect(await counter(mesh, 'gatewaySessionsRejected', reason)).toBe(before + 1);
      browser.setCookie('127.0.0.1', SESSION, value);
      const api = await browser.fetch(`${mesh.origin}/shop`, {
        navigate: false,
        headers: { accept: 'application/json' },
      });
      expect(api.status).toBe(401);
    }
    await browser.close();
  });

  it('fail/a cookie sealed with a rotated-out key starts a new sign-in; ok/the older listed key still opens', async () => {
    const options = {
      cookieName: SESSION,
      idleTimeoutMs: 1_800_000,
      absoluteTimeoutMs: 43_200_000,
      signedInBy: `${mesh.provider.url} ${GATEWAY_CLIENT.clientId}`,
      maxCookieBytes: 12_288,
    };
    const now = Math.floor(Date.now() / 1000);
    const session = {
      sid: 'rotated-key-session',
      claims: { sub: 'alice', iss: mesh.provider.url },
      createdAt: now,
      seenAt: now,
      accessExpiresAt: now + 300,
    };
    const sealWith = (secret: string) =>
      new SessionCodec({ ...options, ring: () => keyRingFromSecrets([Buffer.from(secret)]) })
        .write(session, new Map())[0]
        ?.split(';')[0]
        ?.split('=')[1] as string;
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    browser.setCookie('127.0.0.1', SESSION, sealWith(`${'c'.repeat(20)}retired-session-secret-0123456789`));
    const before = await counter(mesh, 'gatewaySessionsRejected', 'unknown_key');
    expect((await browser.fetch(`${mesh.origin}/shop`)).status).toBe(302);
    expect(await counter(mesh, 'gatewaySessionsRejected', 'unknown_key')).toBe(before + 1);
    browser.setCookie('127.0.0.1', SESSION, sealWith(`${'b'.repeat(20)}old-session-secret-0123456789`));
    const page = await browser.fetch(`${mesh.origin}/shop`);
    expect(page.status).toBe(200);
    expect(JSON.parse(page.body).user.sub).toBe('alice');
    await browser.close();
  });

  it('fail/oversized header block → 431 on HTTP/1.1, refused on HTTP/2', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    const page = await browser
      .fetch(`${mesh.origin}/shop`, { headers: { 'x-big': 'a'.repeat(20_000) } })
      .catch((e: Error) => e);
    if (page instanceof Error) throw page;
    expect(page.status).toBe(431);
    await browser.close();
    const session = h2connect(mesh.origin, { ca: mesh.ca.rootPem });
    const status = await new Promise<number | string>((resolve) => {
      const stream = session.request({ ':path': '/shop', 'x-big': 'a'.repeat(20_000) });
      stream.on('response', (h) => resolve(Number(h[':status'])));
      stream.on('error', (e) => resolve((e as NodeJS.ErrnoException).code ?? 'error'));
      stream.on('close', () => resolve(`closed ${stream.rstCode}`));
      stream.end();
    });
    session.destroy();
    expect(status).toBe(431);
  });

  it('ok/HTTP/2 by ALPN and HTTP/1.1 both served', async () => {
    const alpn = await new Promise<string | false>((resolve, reject) => {
      const socket = tlsConnect(
        { host: '127.0.0.1', port: mesh.gateway.port, ca: mesh.ca.rootPem, ALPNProtocols: ['h2', 'http/1.1'] },
        () => {
          resolve(socket.alpnProtocol ?? false);
          socket.destroy();
        },
      );
      socket.on('error', reject);
    });
    expect(alpn).toBe('h2');
    const session = h2connect(mesh.origin, { ca: mesh.ca.rootPem });
    const status = await new Promise<number>((resolve, reject) => {
      const stream = session.request({ ':path': '/shop', accept: 'application/json' });
      stream.on('response', (h) => resolve(Number(h[':status'])));
      stream.on('error', reject);
      stream.end();
    });
    session.destroy();
    expect(status).toBe(401);
  });
});

describe('gateway callback rate limit', () => {
  let mesh: GatewayMesh;
  beforeAll(async () => {
    mesh = await startGatewayMesh({ gateway: (base) => ({ ...base, limits: { callbackPerMinute: 3 } }) });
  });
  afterAll(async () => {
    await mesh?.close();
  });

  it('fail/the 4th callback from one IP within a minute gets 429 with Retry-After', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++)
      statuses.push((await browser.fetch(`${mesh.origin}/.meshauth/callback?code=x&state=y`)).status);
    expect(statuses).toEqual([401, 401, 401, 429]);
    const limited = await browser.fetch(`${mesh.origin}/.meshauth/callback?code=x&state=y`);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(JSON.parse(limited.body).code).toBe('MESHAUTH_ERR_RATE_LIMITED');
    await browser.close();
  });
});

describe('gateway ID token checks (scripted provider)', () => {
  let mesh: GatewayMesh;
  let op: FakeOp;
  beforeAll(async () => {
    ({ op, mesh } = await startScriptedOpMesh());
  });
  afterAll(async () => {
    await mesh?.close();
    await op?.close();
  });

  it('ok/a well-formed ID token signs in', async () => {
    op.mode = 'ok';
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    const page = await browser.navigate(`${mesh.origin}/shop`);
    expect(page.status, page.body).toBe(200);
    expect(JSON.parse(page.body).user.sub).toBe('mallory');
    await browser.close();
  });

  for (const [mode, reason] of [
    ['bad_nonce', 'nonce_mismatch'],
    ['wrong_iss', 'iss_mismatch'],
    ['wrong_aud', 'aud_mismatch'],
    ['alg_none', 'id_token_invalid'],
    ['hs256_public_key', 'id_token_invalid'],
    ['expired', 'id_token_invalid'],
  ] as const satisfies readonly (readonly [IdTokenMode, string])[]) {
    it(`fail/${mode} is refused (${reason})`, async () => {
      op.mode = mode;
      const browser = new ScriptedBrowser(mesh.ca.rootPem);
      const before = await counter(mesh, 'gatewayLogins', reason);
      const page = await browser.navigate(`${mesh.origin}/shop`);
      expect(page.status).toBe(401);
      expect(page.body).toContain('MESHAUTH_ERR_LOGIN_FAILED');
      expect(browser.cookie(SESSION)).toBeUndefined();
      expect(await counter(mesh, 'gatewayLogins', reason)).toBe(before + 1);
      await browser.close();
    });
  }
});
