// Which app ports /readyz waits for. A TCP-only sidecar (inbound.tcp set, inbound.app left out) has no HTTP app:
// waiting for the default inbound.app (127.0.0.1:8080) kept such a pod unready for ever, while a dead TCP app went
// unnoticed (found by a walkthrough of docs/tcp.md).
import { describe, expect, it } from 'vitest';
import { formatHostPort, sidecarConfigFromObject } from '../../../src/config/index.js';

function readinessApps(inbound: Record<string, unknown>): string[] {
  const config = sidecarConfigFromObject(
    {
      trustDomain: 'example.org',
      ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent', token: '/nonexistent' },
      inbound: { listen: '127.0.0.1:15006', ...inbound },
      outbound: { listen: '127.0.0.1:15001' },
      admin: { listen: '127.0.0.1:15000' },
    },
    'readiness-apps.yaml',
  );
  return config.inbound.readinessApps.map(formatHostPort);
}

describe('readiness apps', () => {
  it('ok/an HTTP sidecar waits for inbound.app, set or default', () => {
    expect(readinessApps({ app: '127.0.0.1:3000' })).toEqual(['127.0.0.1:3000']);
    expect(readinessApps({})).toEqual(['127.0.0.1:8080']);
  });
  it('ok/a TCP-only sidecar (inbound.app left out) waits for inbound.tcp.app only', () => {
    expect(readinessApps({ tcp: { app: '127.0.0.1:6379' } })).toEqual(['127.0.0.1:6379']);
  });
  it('ok/a sidecar with both waits for both', () => {
    expect(readinessApps({ app: '127.0.0.1:3000', tcp: { app: '127.0.0.1:6379' } })).toEqual([
      '127.0.0.1:3000',
      '127.0.0.1:6379',
    ]);
  });
});
