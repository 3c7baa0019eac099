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

// An HTTP/2 SETTINGS value: past 2^32-1 the config used to load, /readyz said ready, and the first peer connection
// threw ERR_HTTP2_INVALID_SETTING_VALUE out of the inbound accept path (an uncaught exception: the sidecar crashed).
describe('inbound.limits.maxConcurrentStreams', () => {
  it('ok/the HTTP/2 maximum, 2^32-1, is accepted', () => {
    expect(load({ maxConcurrentStreams: 4_294_967_295 }).inbound.limits.maxConcurrentStreams).toBe(4_294_967_295);
  });
  it.each([4_294_967_296, 5_000_000_000])('fail/%s is refused, naming the key and the HTTP/2 range', (value) => {
    expect(() => load({ maxConcurrentStreams: value })).toThrow(
      /limits\.yaml: inbound\.limits\.maxConcurrentStreams: expected at most 4294967295/,
    );
  });
});
