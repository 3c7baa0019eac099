// The post-sign-in return path stays on this origin when dot segments hide a `//` (found by an outside audit):
// resolving `/.//evil.example` (or `/a/..//`, `/%2e//`) removes the dot segments and leaves `//evil.example`, a
// scheme-relative reference to another origin, which safeReturnPath used to return. Browsers remove dot segments
// before sending; a front proxy or any client that forwards the target as it came does not.
import { request as httpsRequest } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { safeReturnPath } from '../../src/gateway/return-url.js';
import { ScriptedBrowser } from '../helpers/browser.js';
import { ALICE, type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';

/** A navigation with a request-target sent exactly as given (no client-side dot-segment removal). */
function rawNavigation(
  mesh: GatewayMesh,
  path: string,
): Promise<{ status: number; location: string; cookies: string[] }> {
  const url = new URL(mesh.origin);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: url.hostname,
        port: url.port,
        path,
        ca: mesh.ca.rootPem,
        headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' },
      },
      (res) => {
        res.resume();
        const setCookie = res.headers['set-cookie'] ?? [];
        resolve({ status: res.statusCode ?? 0, location: String(res.headers.location), cookies: setCookie });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('gateway: return URL after sign-in', () => {
  let mesh: GatewayMesh;
  beforeAll(async () => {
    mesh = await startGatewayMesh();
  });
  afterAll(async () => {
    await mesh?.close();
  });

  it('fail/safeReturnPath never returns a scheme-relative path', () => {
    for (const candidate of ['/.//evil.example/x', '/a/..//evil.example', '/%2e//evil.example']) {
      expect(safeReturnPath(candidate).startsWith('//')).toBe(false);
    }
  });

  it('fail/a dot segment before // does not turn the post-sign-in redirect into another origin', async () => {
    const start = await rawNavigation(mesh, '/.//evil.example/steal');
    expect(start.status).toBe(302);
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    for (const line of start.cookies) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      browser.setCookie('127.0.0.1', pair.slice(0, eq), pair.slice(eq + 1));
    }
    const login = await browser.navigate(start.location);
    const action = /<form method="post" action="([^"]+)"/.exec(login.body)?.[1] as string;
    let page = await browser.fetch(new URL(action, login.url).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: ALICE.username, password: ALICE.password }).toString(),
    });
    for (let i = 0; i < 10 && !String(page.headers.location).startsWith(`${mesh.origin}/.meshauth/callback`); i++) {
      page = await browser.fetch(new URL(page.headers.location as string, page.url).href);
    }
    const done = await browser.fetch(String(page.headers.location));
    expect(done.status).toBe(302);
    const target = new URL(String(done.headers.location), mesh.origin);
    expect(target.origin).toBe(mesh.origin);
    await browser.close();
  });
});
