// inbound.limits.maxConnectionsPerSource: unset means a quarter of maxConnections (decided by the listener), a
// value is taken as written, and anything but a positive integer names the key.
import { describe, expect, it } from 'vitest';
import { sidecarConfigFromObject } from '../../../src/config/index.js';

const load = (limits: Record<string, unknown>) =>
  sidecarConfigFromObject(
    {
      trustDomain: 'example.org',
      ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent', token: '/nonexistent' },
      inbound: { limits },
    },
    'limits.yaml',
  );

describe('inbound.limits.maxConnectionsPerSource', () => {
  it('ok/unset: undefined (a quarter of maxConnections at the listener)', () => {
    expect(load({}).inbound.limits.maxConnectionsPerSource).toBeUndefined();
  });
  it('ok/set: taken as written (behind a load balancer that hides client addresses)', () => {
    expect(load({ maxConnectionsPerSource: 3000 }).inbound.limits.maxConnectionsPerSource).toBe(3000);
  });
  it.each([0, -1, 1.5, '10'])('fail/%s names the key', (value) => {
    expect(() => load({ maxConnectionsPerSource: value })).toThrow(/inbound\.limits\.maxConnectionsPerSource/);
  });
});
