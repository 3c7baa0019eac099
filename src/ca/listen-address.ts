// `host:port` listen addresses (`127.0.0.1:8443`, `[::1]:0`, `0.0.0.0:8443`) and the URL a client would use.
import { isIP } from 'node:net';
import { MeshauthError } from '../errors/index.js';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export function parseListenAddress(text: string): ListenAddress {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  const bracketedNotIpv6 = match?.[1] !== undefined && isIP(match[1]) !== 6;
  if (match === null || host === undefined || bracketedNotIpv6 || !Number.isInteger(port) || port > 65_535) {
    throw new MeshauthError(
      'MESHAUTH_ERR_USAGE',
      `invalid listen address ${JSON.stringify(text.slice(0, 80))}: expected HOST:PORT, e.g. 127.0.0.1:8443 or [::1]:8443`,
      { reason: 'bad_listen_address' },
    );
  }
  return { host, port };
}

/** The URL a client would use: for a listener on every interface, the loopback address of the same family. */
export function httpsUrl(host: string, port: number): string {
  const dialed = dialedHost(host);
  return `https://${isIP(dialed) === 6 ? `[${dialed}]` : dialed}:${port}`;
}

/**
 * No client dials "every interface" (0.0.0.0, ::, 0:0:…:0); one on this machine dials loopback instead. IPv4
 * loopback for `::` too: that listener takes both families (IPv4 alone on a host without IPv6, see bindOptions), and
 * the CA's serving certificate names 127.0.0.1, not ::1.
 */
function dialedHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (isIP(host) === 6 && /^[0:]+$/.test(host)) return '127.0.0.1';
  return host;
}
