// outbound.limits.maxConnections: the outbound listener's cap on the app's open connections. Unset: 1,024; a value is
// taken as written; anything but a positive integer is refused naming the file and the key; the environment sets it
// as JSON (MESHAUTH_OUTBOUND_LIMITS), as inbound.limits.
import { describe, expect, it } from 'vitest';
import { OUTBOUND_LIMIT_DEFAULTS, sidecarConfigFromObject } from '../../../src/config/index.js';
import { loadSidecarConfig } from '../../../src/config/load-sidecar-config.js';

const BASE = {
  trustDomain: 'example.org',
  ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent', token: '/nonexistent' },
};
const load = (limits: Record<string, unknown> | undefined) =>
  sidecarConfigFromObject({ ...BASE, outbound: limits === undefined ? {} : { limits } }, 'limits.yaml');

describe('outbound.limits.maxConnections', () => {
  it('ok/unset: 1,024', () => {
    expect(load(undefined).outbound.limits.maxConnections).toBe(1024);
    expect(OUTBOUND_LIMIT_DEFAULTS.maxConnections).toBe(1024);
  });
  it('ok/set: taken as written (an app that holds more connections to its sidecar)', () => {
    expect(load({ maxConnections: 4096 }).outbound.limits.maxConnections).toBe(4096);
  });
  it.each([0, -1, 1.5, '10'])('fail/%s names the file and the key', (value) => {
    expect(() => load({ maxConnections: value })).toThrow(/limits\.yaml: outbound\.limits\.maxConnections/);
  });
  it('fail/an unknown key under outbound.limits is refused', () => {
    expect(() => load({ maxConnection: 10 })).toThrow(/outbound\.limits/);
  });
  it('ok/MESHAUTH_OUTBOUND_LIMITS sets it as JSON', () => {
    const config = loadSidecarConfig(undefined, {
      MESHAUTH_TRUST_DOMAIN: 'example.org',
      MESHAUTH_CA_URL: 'https://127.0.0.1:1',
      MESHAUTH_CA_BUNDLE: '/nonexistent',
      MESHAUTH_CA_TOKEN: '/nonexistent',
      MESHAUTH_OUTBOUND_LIMITS: '{"maxConnections":2048}',
    });
    expect(config.outbound.limits.maxConnections).toBe(2048);
  });
});
