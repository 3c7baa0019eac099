// The gateway's bound on one client's requests in flight to a route (client-share.ts), with an injected clock.
// Found in review: nothing bounded them across a client's connections, so one anonymous client held the whole share
// the service's sidecar gives the gateway (all its browsers are one caller there) and every other browser's request
// to the route waited behind it until it timed out.
import { describe, expect, it } from 'vitest';
import { MeshauthError } from '../../../src/errors/index.js';
import {
  CLIENT_SHARE_LOG_INTERVAL_MS,
  CLIENT_SHARE_PER_ENDPOINT,
  ClientShare,
  clientShareOf,
} from '../../../src/gateway/client-share.js';
import { Metrics } from '../../../src/telemetry/index.js';
import { logLines } from '../../helpers/log-lines.js';

function setup() {
  let now = 0;
  const metrics = new Metrics();
  const log = logLines('gateway');
  const shares = new ClientShare({ metrics, logger: log.logger, now: () => now });
  const counted = async () =>
    (await metrics.connectionsRejected.get()).values.find((v) => v.labels.reason === 'client_share')?.value ?? 0;
  const suppressed = async () =>
    (await metrics.logLinesSuppressed.get()).values.find((v) => v.labels.event === 'gateway_client_share')?.value ?? 0;
  return {
    shares,
    log,
    counted,
    suppressed,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

/** Enters `n` requests; the keys of those admitted and the refusals. */
function fill(shares: ClientShare, client: string, route: string, n: number, endpoints = 1) {
  const admitted: string[] = [];
  const refused: MeshauthError[] = [];
  for (let i = 0; i < n; i++) {
    const place = shares.enter(client, route, () => clientShareOf(endpoints));
    if (typeof place === 'string') admitted.push(place);
    else refused.push(place);
  }
  return { admitted, refused };
}

describe('gateway client share', () => {
  it('ok/the bound is three quarters of the app places a default sidecar gives the gateway, per endpoint', () => {
    expect(CLIENT_SHARE_PER_ENDPOINT).toBe(72);
    expect(clientShareOf(0)).toBe(72); // a name not resolved yet: one endpoint
    expect(clientShareOf(3)).toBe(216);
  });

  it('fail/one client past its share of a route is refused with a stable code, each counted, logged once', async () => {
    const { shares, log, counted, suppressed } = setup();
    const { admitted, refused } = fill(shares, '203.0.113.7', 'shop', 100);
    expect(admitted).toHaveLength(72);
    expect(refused).toHaveLength(28);
    expect(refused[0]).toBeInstanceOf(MeshauthError);
    expect(refused[0]?.code).toBe('MESHAUTH_ERR_RATE_LIMITED');
    expect(refused[0]?.status).toBe(429);
    expect(refused[0]?.reason).toBe('client_share');
    expect(await counted()).toBe(28);
    expect(await suppressed()).toBe(27);
    const lines = log.find({ event: 'gateway_client_share' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      route: 'shop',
      client: '203.0.113.7',
      max: 72,
      code: 'MESHAUTH_ERR_RATE_LIMITED',
    });
  });

  it('ok/a place given back admits the next request; other clients and other routes have their own share', () => {
    const { shares } = setup();
    const first = fill(shares, '203.0.113.7', 'shop', 73);
    expect(first.refused).toHaveLength(1);
    shares.leave(first.admitted[0] as string);
    expect(fill(shares, '203.0.113.7', 'shop', 2).admitted).toHaveLength(1);
    expect(fill(shares, '203.0.113.8', 'shop', 72).refused).toHaveLength(0);
    expect(fill(shares, '203.0.113.7', 'cart', 72).refused).toHaveLength(0);
  });

  it('ok/a route with more endpoints allows that much more', () => {
    const { shares } = setup();
    expect(fill(shares, '2001:db8:1:2::/64', 'shop', 150, 2).admitted).toHaveLength(144);
  });

  it('ok/a client refused again after the interval is logged again; two clients each once', async () => {
    const { shares, log, counted, suppressed, advance } = setup();
    fill(shares, 'a', 'shop', 80);
    fill(shares, 'b', 'shop', 80);
    expect(await counted()).toBe(16);
    advance(CLIENT_SHARE_LOG_INTERVAL_MS - 1);
    fill(shares, 'a', 'shop', 1);
    expect({ counted: await counted(), suppressed: await suppressed() }).toEqual({ counted: 17, suppressed: 15 });
    advance(1);
    fill(shares, 'a', 'shop', 1);
    expect({ counted: await counted(), suppressed: await suppressed() }).toEqual({ counted: 18, suppressed: 15 });
    expect(log.find({ event: 'gateway_client_share', client: 'a' })).toHaveLength(2);
    expect(log.find({ event: 'gateway_client_share', client: 'b' })).toHaveLength(1);
  });
});
