// Which Node lines and systems set SO_REUSEPORT: older Node ignores `reusePort` and macOS or Windows refuse it, so
// the CA must refuse the flag there.
import { describe, expect, it } from 'vitest';
import { bindOptions, reusePortSupported } from '../../../src/platform/index.js';

describe('reusePortSupported', () => {
  it.each([
    ['20.18.0', false],
    ['22.11.0', false],
    ['22.12.0', true],
    ['23.0.0', true],
    ['24.21.0', true],
    ['30.1.2', true],
  ])('Linux, Node %s → %s', (version, expected) => {
    expect(reusePortSupported(version, 'linux')).toBe(expected);
  });

  it.each([
    ['freebsd', true],
    ['darwin', false],
    ['win32', false],
  ] as const)('Node 24 on %s → %s', (platform, expected) => {
    expect(reusePortSupported('24.21.0', platform)).toBe(expected);
  });
});

// An injected sidecar listens on `[::]`: every interface of both families (IPv4-only, IPv6-only and dual-stack
// pods), IPv4 alone on a node without IPv6. An explicit address of one family stays that family.
describe('bindOptions', () => {
  it.each([
    ['ok/[::] is both families (no host: Node binds :: dual-stack, 0.0.0.0 without IPv6)', '::', { port: 15006 }],
    ['ok/the long spelling of :: too', '0:0:0:0:0:0:0:0', { port: 15006 }],
    ['ok/::0 too', '::0', { port: 15006 }],
    ['ok/0.0.0.0 stays IPv4 only', '0.0.0.0', { host: '0.0.0.0', port: 15006 }],
    ['ok/127.0.0.1 as written', '127.0.0.1', { host: '127.0.0.1', port: 15006 }],
    ['ok/::1 as written', '::1', { host: '::1', port: 15006 }],
    ['ok/an IPv4-mapped address as written', '::ffff:127.0.0.1', { host: '::ffff:127.0.0.1', port: 15006 }],
    ['ok/a host name as written', 'localhost', { host: 'localhost', port: 15006 }],
  ])('%s', (_name, host, expected) => {
    expect(bindOptions({ host, port: 15006 })).toEqual(expected);
  });

  it('ok/reusePort is kept for both families', () => {
    expect(bindOptions({ host: '::', port: 8443, reusePort: true })).toEqual({ port: 8443, reusePort: true });
    expect(bindOptions({ host: '0.0.0.0', port: 8443, reusePort: false })).toEqual({ host: '0.0.0.0', port: 8443 });
  });
});
