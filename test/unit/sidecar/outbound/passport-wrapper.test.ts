// The outbound passport wrapper: it addresses a passport to the route's one SPIFFE ID, so it must only wrap when
// that ID is the only peer the outbound will accept for the route. A route that also lists an ID pattern
// (`/sa/*`) may connect to another workload than the one the link names: that peer would receive the end user's
// origin passport it was never addressed to.
import { beforeAll, describe, expect, it } from 'vitest';
import { CredentialHolder } from '../../../../src/agent/index.js';
import { endUserFromClaims } from '../../../../src/authn/end-user.js';
import { mintOriginPassport, ownOrigin, PASSPORT_HEADER } from '../../../../src/authn/passport/index.js';
import type { RouteConfig } from '../../../../src/config/index.js';
import { isMeshauthError } from '../../../../src/errors/index.js';
import { SpiffeId } from '../../../../src/identity/index.js';
import { passportWrapper } from '../../../../src/sidecar/outbound/passport-wrapper.js';
import { PassportStore } from '../../../../src/sidecar/passport-store.js';
import { Metrics } from '../../../../src/telemetry/index.js';
import { TestCa, type TestSvid } from '../../../helpers/test-ca.js';

let ca: TestCa;
let web: TestSvid;
const now = new Date();
const ORDERS = 'spiffe://example.org/ns/shop/sa/orders';

beforeAll(async () => {
  ca = await TestCa.create('example.org');
  web = await ca.issue({ id: ca.idFor('/ns/shop/sa/web') });
});

function route(ids: string[], idPatterns: string[]): RouteConfig {
  return {
    host: 'orders.shop',
    pattern: false,
    address: { host: '127.0.0.1', port: 1 },
    ids: ids.map((id) => SpiffeId.parse(id)),
    idPatterns,
  };
}

/** Runs the wrapper on a request carrying a passport this sidecar minted; resolves to the error, if any. */
async function wrapOn(r: RouteConfig): Promise<{ error: unknown; headers: string[] }> {
  const holder = new CredentialHolder({ svid: web.svid, bundle: ca.bundle });
  const store = new PassportStore();
  const exp = Math.floor(now.getTime() / 1000) + 600;
  const user = endUserFromClaims({ sub: 'alice', iss: 'https://idp.test', exp }, []);
  if (user === undefined) throw new Error('fixture user');
  const origin = mintOriginPassport({ svid: web.svid, now, user });
  store.remember(ownOrigin(origin, SpiffeId.parse(web.id), exp), now.getTime() + 30_000, 'alice');
  const wrap = passportWrapper({ holder, store, metrics: new Metrics(), now: () => now });
  const headers = ['host', 'orders.shop', PASSPORT_HEADER, origin];
  let error: unknown;
  try {
    await wrap({ route: r, method: 'GET', path: '/', headers });
  } catch (caught) {
    error = caught;
  }
  return { error, headers };
}

describe('passportWrapper', () => {
  it('ok/a route naming exactly one SPIFFE ID gets a link addressed to it', async () => {
    const { error, headers } = await wrapOn(route([ORDERS], []));
    expect(error).toBeUndefined();
    const [link] = (headers[3] as string).split(',');
    const claims = JSON.parse(Buffer.from((link as string).split('.')[1] as string, 'base64url').toString());
    expect(claims.aud).toBe(ORDERS);
  });

  it('fail/a route with one exact ID and an ID pattern does not carry a passport (the peer may be another workload)', async () => {
    const { error } = await wrapOn(route([ORDERS], ['spiffe://example.org/ns/shop/sa/*']));
    expect(isMeshauthError(error, 'MESHAUTH_ERR_PASSPORT_INVALID')).toBe(true);
    expect((error as { reason?: string }).reason).toBe('route_audience');
  });
});
