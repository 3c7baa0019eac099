// Config durations end up in Node timers (setTimeout, socket/stream setTimeout, undici's timeouts). Node keeps a
// timer's delay in a signed 32-bit integer: past 2^31-1 ms (about 24.8 days) setTimeout warns
// (TimeoutOverflowWarning) and fires after 1 ms. A sidecar configured with `outbound.timeout: 25d` and
// `outbound.http2: false` answered every request with 504 at once; the config itself was accepted without a word.
// Every timer duration of the sidecar (and the gateway's) is bounded by the schema, with an error naming the key.
import { describe, expect, it } from 'vitest';
import { loadSidecarConfig } from '../../../src/config/index.js';
import { gatewayConfigFromObject } from '../../../src/gateway/index.js';
import { configRefusalMessage } from '../../helpers/config-refusal.js';

const BASE = {
  MESHAUTH_TRUST_DOMAIN: 'example.org',
  MESHAUTH_CA_URL: 'https://ca.example:8443',
  MESHAUTH_CA_BUNDLE: '/etc/meshauth/bundle.pem',
  MESHAUTH_CA_TOKEN: '/var/run/token',
};

describe('sidecar durations stay within what a Node timer can hold', () => {
  const cases: [string, Record<string, string>, string][] = [
    ['drainTimeout', { MESHAUTH_DRAIN_TIMEOUT: '25d' }, 'drainTimeout (from MESHAUTH_DRAIN_TIMEOUT)'],
    ['outbound.timeout', { MESHAUTH_OUTBOUND_TIMEOUT: '25d' }, 'outbound.timeout (from MESHAUTH_OUTBOUND_TIMEOUT)'],
    ['inbound.appTimeout', { MESHAUTH_INBOUND_APP_TIMEOUT: '999999999d' }, 'inbound.appTimeout'],
    [
      'inbound.limits.streamIdleTimeout',
      { MESHAUTH_INBOUND_LIMITS: JSON.stringify({ streamIdleTimeout: '600h' }) },
      'inbound.limits.streamIdleTimeout (from MESHAUTH_INBOUND_LIMITS)',
    ],
    [
      'inbound.limits.handshakeTimeout',
      { MESHAUTH_INBOUND_LIMITS: JSON.stringify({ handshakeTimeout: '2147484s' }) },
      'inbound.limits.handshakeTimeout',
    ],
  ];
  for (const [key, env, named] of cases) {
    it(`fail/${key} past the timer range is refused, naming the key`, () => {
      const message = configRefusalMessage(() => loadSidecarConfig(undefined, { ...BASE, ...env }));
      expect(message).toContain(named);
      expect(message).toContain('24d');
    });
  }

  it('ok/24d, the documented maximum, is still accepted', () => {
    const config = loadSidecarConfig(undefined, {
      ...BASE,
      MESHAUTH_OUTBOUND_TIMEOUT: '24d',
      MESHAUTH_INBOUND_APP_TIMEOUT: '24d',
      MESHAUTH_DRAIN_TIMEOUT: '24d',
    });
    expect(config.outbound.timeoutMs).toBe(24 * 86_400_000);
    // appTimeout + the inbound's 1 s margin (listener-core streamIdleMs) must also fit a timer.
    expect(config.inbound.appTimeoutMs + 1_000).toBeLessThanOrEqual(2 ** 31 - 1);
  });
});

describe('gateway timer durations are bounded the same way', () => {
  const gateway = (extra: Record<string, unknown>) => ({
    trustDomain: 'example.org',
    ca: { url: 'https://127.0.0.1:1', bundle: '/b', token: '/t' },
    listen: '127.0.0.1:0',
    tls: { cert: '/c', key: '/k' },
    routes: [
      {
        name: 'web',
        match: { host: '*' },
        to: { address: '127.0.0.1:1', ids: ['spiffe://example.org/a'] },
        login: 'none',
      },
    ],
    ...extra,
  });
  it('fail/drainTimeout 30d', () => {
    expect(configRefusalMessage(() => gatewayConfigFromObject(gateway({ drainTimeout: '30d' }), 'gw.yaml'))).toContain(
      'gw.yaml: drainTimeout',
    );
  });
  it('fail/limits.upstreamTimeout 30d', () => {
    expect(
      configRefusalMessage(() => gatewayConfigFromObject(gateway({ limits: { upstreamTimeout: '30d' } }), 'gw.yaml')),
    ).toContain('gw.yaml: limits.upstreamTimeout');
  });
  it('ok/session.absoluteTimeout may be longer (a cookie lifetime, not a timer)', () => {
    const config = gatewayConfigFromObject(gateway({ session: { keys: ['/s'], absoluteTimeout: '30d' } }), 'gw.yaml');
    expect(config.session.absoluteTimeoutMs).toBe(30 * 86_400_000);
  });
});
