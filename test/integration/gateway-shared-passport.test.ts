// The gateway vouches for a signed-in user with one origin passport for many requests (the same rule as a sidecar's
// voucher, sharedOrigin): every hop below keeps the origins it verified by their text, so a new origin per request
// would make each of them validate the gateway's signer again. Likewise each hop hands the next one link per passport
// (sharedLink), whose signature the next hop checks once. The origin lives 60 s, travels unchanged down the
// chain, and another user gets an origin of their own.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScriptedBrowser } from '../helpers/browser.js';
import { ALICE, type GatewayMesh, type HopSeen, startGatewayMesh } from '../helpers/gateway-mesh.js';

const BOB = { ...ALICE, username: 'bob', password: 'builder-42' };

function claimsOf(jws: string | undefined): { iat: number; exp: number; usr: { sub: string } } {
  if (jws === undefined) throw new Error('no origin');
  return JSON.parse(Buffer.from(jws.split('.')[1] as string, 'base64url').toString('utf8'));
}

describe('gateway: one origin passport per signed-in user', () => {
  let mesh: GatewayMesh;
  beforeAll(async () => {
    mesh = await startGatewayMesh({ users: [ALICE, BOB] });
  });
  afterAll(async () => {
    await mesh?.close();
  });

  async function twoPages(username: string, password: string): Promise<[HopSeen, HopSeen]> {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    try {
      const first = await browser.signIn(`${mesh.origin}/shop/orders`, username, password);
      const second = await browser.fetch(`${mesh.origin}/shop/orders?again=1`);
      expect(first.status, first.body).toBe(200);
      expect(second.status, second.body).toBe(200);
      return [JSON.parse(first.body), JSON.parse(second.body)];
    } finally {
      await browser.close();
    }
  }

  it('ok/two requests of one session carry one 60 s origin, down the whole chain', async () => {
    const [first, second] = await twoPages(ALICE.username, ALICE.password);
    expect(first.origin).toBeDefined();
    expect(second.origin).toBe(first.origin);
    expect(first.next?.origin).toBe(first.origin);
    expect(second.next?.chain).toEqual([mesh.gatewayId, mesh.webId]);
    const claims = claimsOf(first.origin);
    expect(claims.exp - claims.iat).toBe(60);
    expect(claims.usr.sub).toBe('alice');
  });

  it('ok/two requests of one session carry one link per hop, each accepted by its next hop', async () => {
    const [first, second] = await twoPages(ALICE.username, ALICE.password);
    expect(first.link).toBeDefined();
    expect(second.link).toBe(first.link); // gateway → web
    expect(first.next?.link).toBeDefined();
    expect(second.next?.link).toBe(first.next?.link); // web → app
    expect(first.next?.link).not.toBe(first.link);
    const link = claimsOf(first.link);
    expect(link.exp - link.iat).toBe(60);
  });

  it('fail/another user never receives the first user’s origin', async () => {
    const [alice] = await twoPages(ALICE.username, ALICE.password);
    const [bob, bobAgain] = await twoPages(BOB.username, BOB.password);
    expect(bob.origin).not.toBe(alice.origin);
    expect(bob.link).not.toBe(alice.link);
    expect(bobAgain.origin).toBe(bob.origin);
    expect(claimsOf(bob.origin).usr.sub).toBe('bob');
  });
});
