// Why a sign-in failed, as the operator reads it in `meshauth_gateway_logins_total{result}` and the `login` line
// (found in review): a token answer whose body the provider started and then stalled, a callback without its code or
// with two, and a token answer of the wrong shape were all counted as `id_token_invalid` (401), which reads as a bad
// or forged ID token. Now: a stalled answer is the provider unavailable (502 MESHAUTH_ERR_IDP_UNAVAILABLE,
// `idp_unavailable`), a malformed callback `callback_invalid`, a malformed token answer `token_response_invalid`
// (both 401 MESHAUTH_ERR_LOGIN_FAILED, as before). An ID token issued to another party (`azp`) is refused even with
// one audience (`azp_mismatch`). An ID token issued ahead of the gateway's clock beyond its tolerance (a probe's: one
// day ahead, valid for ten years) is refused as an expired one is (`id_token_invalid`).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScriptedBrowser } from '../helpers/browser.js';
import { type FakeOp, type IdTokenMode, startScriptedOpMesh, type TokenEndpointFault } from '../helpers/fake-op.js';
import { type GatewayMesh, gatewayLogins } from '../helpers/gateway-mesh.js';

const SESSION = '__Host-meshauth';

// Each describe below waits out the relying party's 10 s timeout once (a token answer that never comes, one whose body
// stalls), so the two run side by side, each with a provider and a mesh of its own: the provider's fault is a setting of
// the whole provider, and each case counts the logins and log lines of its mesh. Within a describe the cases run one
// after another (it.sequential).

// The provider's token endpoint in trouble while a browser signs in: a 503 page, a JSON `server_error`, no answer at
// all. Each is the provider being unavailable (502 MESHAUTH_ERR_IDP_UNAVAILABLE, counted as `idp_unavailable`), never
// an ID token the gateway refused (401, `id_token_invalid`: what an operator reads as an attack).
describe('gateway: token endpoint outage during sign-in', { concurrent: true }, () => {
  let op: FakeOp;
  let mesh: GatewayMesh;
  beforeAll(async () => {
    ({ op, mesh } = await startScriptedOpMesh());
  });
  afterAll(async () => {
    await mesh?.close();
    await op?.close();
  });
  for (const fault of ['html_503', 'server_error', 'no_answer'] as const satisfies readonly TokenEndpointFault[]) {
    it.sequential(`fail/token endpoint ${fault} → 502 MESHAUTH_ERR_IDP_UNAVAILABLE, counted idp_unavailable, one log line`, async () => {
      op.tokenFault = fault;
      const browser = new ScriptedBrowser(mesh.ca.rootPem);
      try {
        const before = await gatewayLogins(mesh, 'idp_unavailable');
        const seen = mesh.log.lines.length;
        const page = await browser.navigate(`${mesh.origin}/shop`);
        expect(page.status).toBe(502);
        expect(page.body).toContain('MESHAUTH_ERR_IDP_UNAVAILABLE');
        expect(await gatewayLogins(mesh, 'idp_unavailable')).toBe(before + 1);
        const lines = mesh.log.lines.slice(seen).filter((line) => line.event === 'login');
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatchObject({ result: 'failed', reason: 'idp_unavailable' });
      } finally {
        op.tokenFault = 'none';
        await browser.close();
      }
    }, 30_000);
  }

  it.sequential('ok/the provider back: the next sign-in completes', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    const page = await browser.navigate(`${mesh.origin}/shop`);
    expect(page.status, page.body).toBe(200);
    await browser.close();
  });
});

describe('gateway: the reason a sign-in failed', { concurrent: true }, () => {
  let op: FakeOp;
  let mesh: GatewayMesh;
  beforeAll(async () => {
    ({ op, mesh } = await startScriptedOpMesh());
  });
  afterAll(async () => {
    await mesh?.close();
    await op?.close();
  });
  /** Starts a sign-in and follows it to the provider's answer: the callback URL, not yet sent. */
  async function callbackOf(browser: ScriptedBrowser): Promise<URL> {
    const start = await browser.fetch(`${mesh.origin}/shop`);
    expect(start.status).toBe(302);
    const approved = await browser.fetch(String(start.headers.location));
    expect(approved.status).toBe(302);
    return new URL(String(approved.headers.location));
  }

  /** Sends `callback`; expects the refusal `status`/`code`, counted once under `reason`, with one `login` line. */
  async function expectRefused(
    browser: ScriptedBrowser,
    callback: URL,
    refusal: { readonly status: number; readonly code: string; readonly reason: string },
  ): Promise<void> {
    const before = await gatewayLogins(mesh, refusal.reason);
    const seen = mesh.log.lines.length;
    const page = await browser.fetch(callback.href);
    expect(page.status).toBe(refusal.status);
    expect(page.body).toContain(refusal.code);
    expect(browser.cookie(SESSION)).toBeUndefined();
    expect(await gatewayLogins(mesh, refusal.reason)).toBe(before + 1);
    const lines = mesh.log.lines.slice(seen).filter((line) => line.event === 'login');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ result: 'failed', reason: refusal.reason, code: refusal.code });
  }

  const LOGIN_FAILED = { status: 401, code: 'MESHAUTH_ERR_LOGIN_FAILED' } as const;

  for (const [what, edit] of [
    ['without a code', (q: URLSearchParams) => q.delete('code')],
    ['with an empty code', (q: URLSearchParams) => q.set('code', '')],
    ['with the code twice', (q: URLSearchParams) => q.append('code', 'another-code')],
  ] as const) {
    it.sequential(`fail/a callback ${what} → 401, callback_invalid`, async () => {
      const browser = new ScriptedBrowser(mesh.ca.rootPem);
      try {
        const callback = await callbackOf(browser);
        edit(callback.searchParams);
        await expectRefused(browser, callback, { ...LOGIN_FAILED, reason: 'callback_invalid' });
      } finally {
        await browser.close();
      }
    });
  }

  for (const fault of ['token_type_mac', 'no_access_token'] as const satisfies readonly TokenEndpointFault[]) {
    it.sequential(`fail/a token answer with ${fault} → 401, token_response_invalid`, async () => {
      const browser = new ScriptedBrowser(mesh.ca.rootPem);
      try {
        const callback = await callbackOf(browser);
        op.tokenFault = fault;
        await expectRefused(browser, callback, { ...LOGIN_FAILED, reason: 'token_response_invalid' });
      } finally {
        op.tokenFault = 'none';
        await browser.close();
      }
    });
  }

  it.sequential('fail/an ID token for one audience issued to another party (azp) → 401, azp_mismatch', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    try {
      const callback = await callbackOf(browser);
      op.mode = 'other_azp' satisfies IdTokenMode;
      await expectRefused(browser, callback, { ...LOGIN_FAILED, reason: 'azp_mismatch' });
    } finally {
      op.mode = 'ok';
      await browser.close();
    }
  });

  it.sequential('fail/an ID token issued one day ahead (valid for ten years) → 401, id_token_invalid', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    try {
      const callback = await callbackOf(browser);
      op.mode = 'iat_in_future' satisfies IdTokenMode;
      await expectRefused(browser, callback, { ...LOGIN_FAILED, reason: 'id_token_invalid' });
    } finally {
      op.mode = 'ok';
      await browser.close();
    }
  });

  it.sequential('fail/a token answer whose body stalls after its head → 502 MESHAUTH_ERR_IDP_UNAVAILABLE, idp_unavailable', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    try {
      const callback = await callbackOf(browser);
      op.tokenFault = 'body_stalls';
      // The relying party's 10 s timeout ends the read.
      await expectRefused(browser, callback, {
        status: 502,
        code: 'MESHAUTH_ERR_IDP_UNAVAILABLE',
        reason: 'idp_unavailable',
      });
    } finally {
      op.tokenFault = 'none';
      await browser.close();
    }
  }, 30_000);

  it.sequential('ok/a well-formed callback and token answer sign in', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    try {
      const landed = await browser.fetch((await callbackOf(browser)).href);
      expect(landed.status).toBe(302);
      expect(browser.cookie(SESSION)).toBeDefined();
    } finally {
      await browser.close();
    }
  });
});
