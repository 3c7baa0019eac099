// The edge with a real browser: headless Chromium (Debian's, driven by playwright-core) opens a protected page on
// the gateway, is sent to the OpenID provider, signs in with a password, and lands on a page served two hops
// down (gateway → web → app) whose app sees the user's sub and the passport chain [gateway, web]. The session
// cookie's flags are read from the browser's own cookie jar; logout goes through the provider's end_session
// endpoint and the next visit asks for the password again.
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALICE, type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';

const CHROMIUM = '/usr/bin/chromium';

describe.skipIf(!existsSync(CHROMIUM))('gateway with a real browser', () => {
  let mesh: GatewayMesh;
  let browser: Browser;
  beforeAll(async () => {
    mesh = await startGatewayMesh();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await mesh?.close();
  });

  it('ok/sign in with a password, see the chain two hops down, sign out, asked to sign in again', async () => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    await page.goto(`${mesh.origin}/shop/orders/42`);
    expect(page.url().startsWith(`${mesh.provider.url}/interaction/`)).toBe(true);
    await page.fill('#username', ALICE.username);
    await page.fill('#password', ALICE.password);
    await Promise.all([page.waitForURL(`${mesh.origin}/shop/orders/42`), page.click('#submit')]);

    const seen = JSON.parse(await page.evaluate(() => document.body.textContent));
    expect(seen.service).toBe('web');
    expect(seen.user.sub).toBe('alice');
    expect(seen.chain).toEqual([mesh.gatewayId]);
    expect(seen.cookie ?? '').not.toContain('__Host-meshauth');
    expect(seen.next.service).toBe('app');
    expect(seen.next.user.sub).toBe('alice');
    expect(seen.next.chain).toEqual([mesh.gatewayId, mesh.webId]);
    expect(seen.next.caller).toBe(mesh.webId);

    const cookies = await context.cookies(mesh.origin);
    const session = cookies.find((c) => c.name === '__Host-meshauth');
    expect(session).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Lax', path: '/', domain: '127.0.0.1' });
    expect(cookies.filter((c) => c.name.startsWith('__Host-meshauth-login'))).toEqual([]);
    // Cookies the service sets pass through the gateway.
    expect(cookies.find((c) => c.name === 'app-pref')?.value).toBe('dark');

    await page.goto(`${mesh.origin}/.meshauth/logout`);
    await page.waitForURL((url) => url.href.startsWith(`${mesh.provider.url}/interaction/`));
    expect(await page.isVisible('#password')).toBe(true);
    expect((await context.cookies(mesh.origin)).find((c) => c.name === '__Host-meshauth')).toBeUndefined();
    expect(mesh.log.find({ event: 'logout', rpInitiated: true })).toHaveLength(1);
    await context.close();
  });
});
