// The names of the CA's serving certificate: loopback of both families and the host name always, the listen address
// when it is a specific IP (the CA's URL and default issuer name it), never a wildcard; each IP once.
import { describe, expect, it } from 'vitest';
import { servingSans } from '../../../src/ca/serving-sans.js';

const ALWAYS = ['localhost', '127.0.0.1', '::1', 'ca-host'];

function sans(listenHost: string, extra: readonly string[] = []): string[] {
  return servingSans({ listenHost, hostName: 'CA-Host', extra });
}

describe('servingSans', () => {
  it.each([
    ['ok/IPv6 loopback listen: ::1, named by default', '::1', ALWAYS],
    ['ok/IPv6 loopback, long spelling: the same ::1, once', '0:0:0:0:0:0:0:1', ALWAYS],
    ['ok/IPv4 loopback listen: already named', '127.0.0.1', ALWAYS],
    ['ok/another loopback IPv4', '127.0.0.2', [...ALWAYS, '127.0.0.2']],
    ['ok/a specific IPv4', '10.0.0.5', [...ALWAYS, '10.0.0.5']],
    ['ok/a specific IPv6, in its compressed spelling', 'FD00:0:0:0:0:0:0:5', [...ALWAYS, 'fd00::5']],
    ['ok/IPv4-mapped IPv6, without the dotted quad', '::ffff:127.0.0.1', [...ALWAYS, '::ffff:7f00:1']],
    ['ok/every IPv4 interface: no 0.0.0.0', '0.0.0.0', ALWAYS],
    ['ok/every interface, both families: no ::', '::', ALWAYS],
    ['ok/every IPv6 interface, long spelling', '0:0:0:0:0:0:0:0', ALWAYS],
    ['ok/a name: left to --san', 'ca.mesh.svc', ALWAYS],
  ])('%s', (_name, listenHost, expected) => {
    expect(sans(listenHost)).toEqual(expected);
  });

  it('ok/--san values follow, as given, each once (IPv6 in one spelling)', () => {
    expect(
      sans('10.0.0.5', ['ca.mesh.svc', 'Meshauth-CA.example', '10.0.0.5', '0:0::1', '::FFFF:10.0.0.6', '']),
    ).toEqual([...ALWAYS, '10.0.0.5', 'ca.mesh.svc', 'Meshauth-CA.example', '::ffff:a00:6']);
  });
});
