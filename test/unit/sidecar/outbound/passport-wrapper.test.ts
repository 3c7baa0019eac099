// The outbound passport wrapper: it addresses a passport to the route's one SPIFFE ID, so it must only wrap when
// that ID is the only peer the outbound will accept for the route. A route that also lists an ID pattern
// (`/sa/*`) may connect to another workload than the one the link names: that peer would receive the end user's
// origin passport it was never addressed to.
import { beforeAll, describe, expect, it } from 'vitest';
import { CredentialHolder } from '../../../../src/agent/index.js';
import { endUserFromClaims } from '../../../../src/authn/end-user.js';
import {
  mintOriginPassport,
  ownOrigin,
  PASSPORT_HEADER,
  thumbprintOfDer,
} from '../../../../src/authn/passport/index.js';
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

/** A wrapper whose store holds an origin passport this sidecar (web) minted for alice. */
function wrapperWithOrigin() {
  const holder = new CredentialHolder({ svid: web.svid, bundle: ca.bundle });
  const store = new PassportStore();
  const exp = Math.floor(now.getTime() / 1000) + 600;
  const user = endUserFromClaims({ sub: 'alice', iss: 'https://idp.test', exp }, []);
  if (user === undefined) throw new Error('fixture user');
  const origin = mintOriginPassport({ svid: web.svid, now, user });
  store.remember(ownOrigin(origin, SpiffeId.parse(web.id), exp), now.getTime() + 30_000, 'alice');
  const metrics = new Metrics();
  return { holder, origin, metrics, wrap: passportWrapper({ holder, store, metrics, now: () => now }) };
}

/**
 * Runs the wrapper on a request carrying a passport this sidecar minted (or the `passports` given, as the app sent
 * them); resolves to the error, if any, and the wrapper's meshauth_passport_verifications_total by result.
 */
async function wrapOn(
  r: RouteConfig,
  passports?: readonly string[],
): Promise<{ error: unknown; headers: string[]; results: Record<string, number> }> {
  const { origin, metrics, wrap } = wrapperWithOrigin();
  const headers = ['host', 'orders.shop', ...(passports ?? [origin]).flatMap((value) => [PASSPORT_HEADER, value])];
  let error: unknown;
  try {
    await wrap({ route: r, method: 'GET', path: '/', headers });
  } catch (caught) {
    error = caught;
  }
  const { values } = await metrics.passportVerifications.get();
  return { error, headers, results: Object.fromEntries(values.map((v) => [String(v.labels.result), v.value])) };
}

describe('passportWrapper', () => {
  it('ok/a route naming exactly one SPIFFE ID gets a link addressed to it', async () => {
    const { error, headers } = await wrapOn(route([ORDERS], []));
    expect(error).toBeUndefined();
    const [link] = (headers[3] as string).split(',');
    const claims = JSON.parse(Buffer.from((link as string).split('.')[1] as string, 'base64url').toString());
    expect(claims.aud).toBe(ORDERS);
  });

  it('ok/the wrapped request is bound to the SVID it was signed with, and rebinding signs it for another', async () => {
    const { holder, origin, wrap } = wrapperWithOrigin();
    const context: Parameters<typeof wrap>[0] = {
      route: route([ORDERS], []),
      method: 'GET',
      path: '/',
      headers: ['host', 'orders.shop', PASSPORT_HEADER, origin],
    };
    await wrap(context);
    const thumbprint = () => {
      const [link] = (context.headers[3] as string).split(',');
      return JSON.parse(Buffer.from((link as string).split('.')[1] as string, 'base64url').toString()).cnf['x5t#S256'];
    };
    const binding = context.binding;
    expect(binding?.credentials).toBe(holder.current);
    const signedWithFirst = thumbprint();
    const rotated = await ca.issue({ id: web.id });
    binding?.rebind({ svid: rotated.svid, bundle: ca.bundle });
    expect(thumbprint()).not.toBe(signedWithFirst);
    expect(thumbprint()).toBe(thumbprintOfDer(Buffer.from(rotated.svid.leafDer)));
  });

  it('fail/a route with one exact ID and an ID pattern does not carry a passport (the peer may be another workload)', async () => {
    const { error } = await wrapOn(route([ORDERS], ['spiffe://example.org/ns/shop/sa/*']));
    expect(isMeshauthError(error, 'MESHAUTH_ERR_PASSPORT_INVALID')).toBe(true);
    expect((error as { reason?: string }).reason).toBe('route_audience');
  });
});

// A refusal is counted on the passport metric under its reason, as the inbound's verification results are: an app
// that sends a passport it never received shows there, not only in meshauth_requests_rejected_total.
describe('passportWrapper: refusals in meshauth_passport_verifications_total', () => {
  const cases: ReadonlyArray<{ name: string; route: RouteConfig; passports?: readonly string[]; result: string }> = [
    {
      name: 'fail/a passport the sidecar never received',
      route: route([ORDERS], []),
      passports: ['e30.e30.x'],
      result: 'unknown_passport',
    },
    {
      name: 'fail/a route with an ID pattern beside its ID',
      route: route([ORDERS], ['spiffe://example.org/ns/shop/sa/*']),
      result: 'route_audience',
    },
    {
      name: 'fail/a route naming two IDs',
      route: route([ORDERS, 'spiffe://example.org/ns/shop/sa/payments'], []),
      result: 'route_audience',
    },
    {
      name: 'fail/two passport headers',
      route: route([ORDERS], []),
      passports: ['e30.e30.x', 'e30.e30.y'],
      result: 'format',
    },
  ];
  for (const c of cases) {
    it(`${c.name}: counted once as ${c.result}`, async () => {
      const { error, results } = await wrapOn(c.route, c.passports);
      expect(isMeshauthError(error, 'MESHAUTH_ERR_PASSPORT_INVALID')).toBe(true);
      expect((error as { reason?: string }).reason).toBe(c.result);
      expect(results).toEqual({ [c.result]: 1 });
    });
  }

  it('ok/a wrapped passport, or a request without one, counts nothing', async () => {
    expect((await wrapOn(route([ORDERS], []))).results).toEqual({});
    expect((await wrapOn(route([ORDERS], []), [])).results).toEqual({});
  });
});

// One link per received passport and next hop while it may be shared (sharedLink): minted for 60 s and handed out
// while 30 s of it are left, so the next hop has as long as with a link of its own, and verified there once per
// connection instead of once per request.
describe('passportWrapper: one link per passport and next hop', () => {
  const T0 = Date.UTC(2026, 11, 5, 12, 0, 0);
  const PAYMENTS = 'spiffe://example.org/ns/shop/sa/payments';

  function wrapper(userExpiresInS = 3600) {
    const clock = { ms: T0 };
    const holder = new CredentialHolder({ svid: web.svid, bundle: ca.bundle });
    const store = new PassportStore();
    const exp = T0 / 1000 + userExpiresInS;
    const user = endUserFromClaims({ sub: 'alice', iss: 'https://idp.test', exp }, []);
    if (user === undefined) throw new Error('fixture user');
    const originFor = () => {
      const origin = mintOriginPassport({ svid: web.svid, now: new Date(clock.ms), user });
      store.remember(ownOrigin(origin, SpiffeId.parse(web.id), exp), clock.ms + 600_000, 'alice');
      return origin;
    };
    const wrap = passportWrapper({ holder, store, metrics: new Metrics(), now: () => new Date(clock.ms) });
    const link = async (origin: string, to = ORDERS): Promise<{ value: string; iat: number; exp: number }> => {
      const headers = ['host', 'orders.shop', PASSPORT_HEADER, origin];
      await wrap({ route: route([to], []), method: 'GET', path: '/', headers });
      const value = headers[3] as string;
      const claims = JSON.parse(Buffer.from(value.split('.')[1] as string, 'base64url').toString());
      return { value, iat: claims.iat, exp: claims.exp };
    };
    return { clock, holder, originFor, link };
  }

  it('ok/one 60 s link while 30 s of it are left, then a new one', async () => {
    const { clock, originFor, link } = wrapper();
    const origin = originFor();
    const first = await link(origin);
    expect(first.exp - first.iat).toBe(60);
    clock.ms = T0 + 30_000; // exactly 30 s left
    expect((await link(origin)).value).toBe(first.value);
    clock.ms = T0 + 31_000;
    const next = await link(origin);
    expect(next.value).not.toBe(first.value);
    expect(next.iat).toBe(T0 / 1000 + 31);
  });

  it('ok/another next hop or another passport gets a link of its own', async () => {
    const { originFor, link } = wrapper();
    const origin = originFor();
    const toOrders = await link(origin);
    const toPayments = await link(origin, PAYMENTS);
    expect(toPayments.value).not.toBe(toOrders.value);
    expect(JSON.parse(Buffer.from(toPayments.value.split('.')[1] as string, 'base64url').toString()).aud).toBe(
      PAYMENTS,
    );
    expect((await link(originFor())).value).not.toBe(toOrders.value);
  });

  it('ok/a link that ends with the user’s token is handed out to its end', async () => {
    const { clock, originFor, link } = wrapper(20);
    const origin = originFor();
    const first = await link(origin);
    expect(first.exp).toBe(T0 / 1000 + 20);
    clock.ms = T0 + 19_000;
    expect((await link(origin)).value).toBe(first.value);
    clock.ms = T0 + 20_000; // expired: never handed out again
    expect((await link(origin)).value).not.toBe(first.value);
  });

  it('fail/a new SVID, or a clock gone back past the mint, mints a new link', async () => {
    const { clock, holder, originFor, link } = wrapper();
    const origin = originFor();
    clock.ms = T0 + 10_000;
    const first = await link(origin);
    clock.ms = T0 + 9_000;
    const afterStep = await link(origin);
    expect(afterStep.value).not.toBe(first.value);
    expect((await link(origin)).value).toBe(afterStep.value);
    holder.set({ svid: (await ca.issue({ id: ca.idFor('/ns/shop/sa/web') })).svid, bundle: ca.bundle });
    expect((await link(origin)).value).not.toBe(afterStep.value);
  });
});
