// Found by an outside security test (2026-12-02): `inbound.tcp.app` may name the HTTP app (`inbound.app`), the
// sidecar's own admin or outbound listener. A mesh peer that negotiates a tunnel ALPN then gets raw bytes to that
// port: to the HTTP app past the whole HTTP pipeline (no identity-header stripping: it can write its own
// x-forwarded-client-cert / x-meshauth-user; no L7 policy), or into this workload's outbound proxy (calls made with
// this workload's SVID: a confused deputy). The config loader refuses them by name.
import { describe, expect, it } from 'vitest';
import { sidecarConfigFromObject } from '../../../src/config/index.js';

function load(tcpApp: string) {
  return () =>
    sidecarConfigFromObject(
      {
        trustDomain: 'example.org',
        ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent', token: '/nonexistent' },
        inbound: { listen: '127.0.0.1:15006', app: '127.0.0.1:8080', tcp: { app: tcpApp } },
        outbound: { listen: '127.0.0.1:15001', routes: {} },
        admin: { listen: '127.0.0.1:15000' },
      },
      'tcp-app-target.yaml',
    );
}

describe('inbound.tcp.app must not point back into the HTTP path or the sidecar itself', () => {
  it('fail/inbound.tcp.app equal to inbound.app is refused (a tunnel would bypass header stripping and L7 policy)', () => {
    expect(load('127.0.0.1:8080')).toThrow(/inbound\.tcp\.app/);
  });
  it('fail/inbound.tcp.app naming the outbound listener is refused (peers would call out with this SVID)', () => {
    expect(load('127.0.0.1:15001')).toThrow(/inbound\.tcp\.app/);
  });
  it('fail/inbound.tcp.app naming the admin listener is refused', () => {
    expect(load('127.0.0.1:15000')).toThrow(/inbound\.tcp\.app/);
  });
  it('ok/a separate TCP app port is accepted', () => {
    expect(load('127.0.0.1:6379')).not.toThrow();
  });
});
