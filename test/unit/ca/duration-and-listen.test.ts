// The shared duration parser (src/config/duration.ts) and the listen-address parser the CA flags use.
import { describe, expect, it } from 'vitest';
import { httpsUrl, parseListenAddress } from '../../../src/ca/index.js';
import { durationInRange, formatDuration, parseDuration } from '../../../src/config/duration.js';
import { MeshauthError } from '../../../src/errors/index.js';

describe('parseDuration', () => {
  it.each([
    ['ok/90s', '90s', 90_000],
    ['ok/10m', '10m', 600_000],
    ['ok/1h', '1h', 3_600_000],
    ['ok/24h', '24h', 86_400_000],
    ['ok/500ms', '500ms', 500],
    ['ok/7d', '7d', 604_800_000],
  ])('%s', (_name, text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '1', 'h', '1.5h', '-1h', '1 h', '1H', '1hour', '1h30m', '9999999999s'])('fail/%j', (text) => {
    expect(() => parseDuration(text)).toThrow(MeshauthError);
  });

  it('ok/formatDuration prints the shortest exact unit', () => {
    expect([3_600_000, 90_000, 86_400_000, 172_800_000, 1500].map(formatDuration)).toEqual([
      '1h',
      '90s',
      '24h',
      '2d',
      '1500ms',
    ]);
  });

  it('fail/out of range names both bounds', () => {
    expect(() => durationInRange('--ttl', '25h', 60_000, 86_400_000)).toThrow(
      /--ttl 25h is out of range: must be between 1m and 24h/,
    );
    expect(durationInRange('--ttl', '60s', 60_000, 86_400_000)).toBe(60_000);
  });
});

describe('parseListenAddress', () => {
  it.each([
    ['ok/IPv4', '127.0.0.1:8443', { host: '127.0.0.1', port: 8443 }, 'https://127.0.0.1:8443'],
    ['ok/port 0', '127.0.0.1:0', { host: '127.0.0.1', port: 0 }, 'https://127.0.0.1:0'],
    ['ok/IPv6', '[::1]:8443', { host: '::1', port: 8443 }, 'https://[::1]:8443'],
    ['ok/name', 'localhost:9000', { host: 'localhost', port: 9000 }, 'https://localhost:9000'],
    // Nobody dials "every interface": the URL (and the default issuer) names loopback. `[::]` is every interface of
    // both families (IPv4 alone on a host without IPv6), so IPv4 loopback, which the CA's certificate names, answers.
    ['ok/every IPv4 interface', '0.0.0.0:8443', { host: '0.0.0.0', port: 8443 }, 'https://127.0.0.1:8443'],
    ['ok/every interface, both families', '[::]:8443', { host: '::', port: 8443 }, 'https://127.0.0.1:8443'],
    [
      'ok/every IPv6 interface, long form',
      '[0:0:0:0:0:0:0:0]:8443',
      { host: '0:0:0:0:0:0:0:0', port: 8443 },
      'https://127.0.0.1:8443',
    ],
    [
      'ok/a name that is an Object property',
      'constructor:8443',
      { host: 'constructor', port: 8443 },
      'https://constructor:8443',
    ],
  ])('%s', (_name, text, address, url) => {
    expect(parseListenAddress(text)).toEqual(address);
    expect(httpsUrl(address.host, address.port)).toBe(url);
  });

  it.each([
    '8443',
    '127.0.0.1',
    '127.0.0.1:99999',
    '::1:8443',
    ':8443',
    '127.0.0.1:port',
    // Brackets hold an IPv6 address, not any run of hex digits and colons: these used to pass and fail at bind as a
    // DNS lookup of the text (ENOTFOUND).
    '[:::1]:8443',
    '[1::2::3]:8443',
    '[12345::1]:8443',
    '[::1.2.3]:8443',
    '[1:2:3:4:5:6:7:8:9]:8443',
  ])('fail/%j', (text) => {
    expect(() => parseListenAddress(text)).toThrow(MeshauthError);
  });
});
