// A session is bound to the gateway's provider and client (found by an outside audit): the sealed session used to
// bind only the cookie name, so two gateways that share session key files (one Secret mounted by every gateway of
// a platform) but sign users in at different providers accepted each other's sessions, and B vouched in its
// passports for a user of A's provider.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScriptedBrowser } from '../helpers/browser.js';
import { ALICE, type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';

const SESSION = '__Host-meshauth';

describe('gateway: sessions across gateways', () => {
  let a: GatewayMesh;
  let b: GatewayMesh;
  beforeAll(async () => {
    a = await startGatewayMesh();
    b = await startGatewayMesh({
      gateway: (base) => ({
        ...base,
        session: { ...(base.session as Record<string, unknown>), keys: a.files.sessionKeys },
      }),
    });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  it("fail/gateway B refuses a session that gateway A's provider signed in", async () => {
    const browser = new ScriptedBrowser(a.ca.rootPem);
    await browser.signIn(`${a.origin}/shop`, ALICE.username, ALICE.password);
    const sealed = browser.cookie(SESSION)?.value as string;
    const atB = new ScriptedBrowser(b.ca.rootPem);
    atB.setCookie('127.0.0.1', SESSION, sealed);
    const page = await atB.fetch(`${b.origin}/shop`);
    expect(page.status).toBe(302);
    await browser.close();
    await atB.close();
  });
});
