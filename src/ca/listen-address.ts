// `host:port` listen addresses (`127.0.0.1:8443`, `[::1]:0`, `0.0.0.0:8443`) and the URL a client would use.
import { isIP } from 'node:net';
import { parseHostPort } from '../config/host-port.js';
import { MeshauthError } from '../errors/index.js';
import { isEveryAddressIpv6 } from '../platform/index.js';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export function parseListenAddress(text: string): ListenAddress {
  // The sidecar config's parser: the same rules for names, ports and bracketed IPv6 literals.
  const address = parseHostPort(text.trim());
  if (address === undefined) {
    throw new MeshauthError(
      'MESHAUTH_ERR_USAGE',
      `invalid listen address ${JSON.stringify(text.slice(0, 80))}: expected HOST:PORT, e.g. 127.0.0.1:8443 or [::1]:8443`,
      { reason: 'bad_listen_address' },
    );
  }
  return { host: address.host, port: address.port };
}

/** The URL a client would use: for a listener on every interface, the loopback address of the same family. */
export function httpsUrl(host: string, port: number): string {
  const dialed = dialedHost(host);
  return `https://${isIP(dialed) === 6 ? `[${dialed}]` : dialed}:${port}`;
}

/**
 * No client dials "every interface" (0.0.0.0, ::, 0:0:…:0); one on this machine dials loopback instead. IPv4
 * loopback for `::` too: that listener takes both families, but IPv4 alone on a host without IPv6 (see bindOptions).
 */
function dialedHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (isEveryAddressIpv6(host)) return '127.0.0.1';
  return host;
}
