// Outside review (2026-12-02) probes for inbound.tcp.app clash detection (samePlace in src/config/sidecar-config.ts).
import { describe, expect, it } from 'vitest';
import { sidecarConfigFromObject } from '../../../src/config/index.js';

function load(tcpApp: string, inbound: Record<string, unknown> = { listen: '127.0.0.1:15006', app: '127.0.0.1:8080' }) {
  return () =>
    sidecarConfigFromObject(
      {
        trustDomain: 'example.org',
        ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent', token: '/nonexistent' },
        inbound: { ...inbound, tcp: { app: tcpApp } },
        outbound: { listen: '127.0.0.1:15001', routes: {} },
        admin: { listen: '127.0.0.1:15000' },
      },
      'tcp-app-edges.yaml',
    );
}

describe('inbound.tcp.app clash: spellings of loopback that reach inbound.app / outbound.listen', () => {
  it.each([
    ['fail/LOCALHOST (host names are case-insensitive)', 'LOCALHOST:8080'],
    ['fail/IPv4-mapped loopback [::ffff:127.0.0.1]', '[::ffff:127.0.0.1]:8080'],
    ['fail/127.1 (inet_aton shorthand, resolves to 127.0.0.1)', '127.1:8080'],
    ['fail/0 (resolves to 0.0.0.0, i.e. this host)', '0:8080'],
  ])('%s is refused', (_name, tcpApp) => {
    expect(load(tcpApp)).toThrow(/inbound\.tcp\.app/);
  });
  it('fail/long-form IPv6 loopback [0:0:0:0:0:0:0:1] is the HTTP app on [::1]', () => {
    expect(load('[0:0:0:0:0:0:0:1]:8080', { listen: '127.0.0.1:15006', app: '[::1]:8080' })).toThrow(
      /inbound\.tcp\.app/,
    );
  });
});

describe('inbound.tcp.app clash: false positives', () => {
  it('ok/a TCP-only pod (no inbound.app) whose TCP service is on 8080 is accepted: the default inbound.app is unused', () => {
    expect(load('127.0.0.1:8080', { listen: '127.0.0.1:15006' })).not.toThrow();
  });
  it('ok/127.0.0.2:15001 is not the outbound listener on 127.0.0.1:15001', () => {
    expect(load('127.0.0.2:15001')).not.toThrow();
  });
});
