// The DNS names and IP addresses of the CA's serving certificate: every name a client may dial to reach it, the URL
// the CA advertises (its default issuer) among them. Pure: the machine's host name comes in from the caller.
import { isIP } from 'node:net';
import { isEveryAddressIpv6 } from '../platform/index.js';

/** Loopback of both families: a client on the CA's own machine dials one of them, whichever the CA listens on. */
const LOOPBACK = ['localhost', '127.0.0.1', '::1'] as const;

export interface ServingSansInput {
  /** Host of the listen address: a specific IP is named, since the CA's URL names it; a wildcard or a name is not. */
  readonly listenHost: string;
  /** This machine's host name. */
  readonly hostName: string;
  /** `ca serve --san`: DNS names or IP addresses, as given. */
  readonly extra: readonly string[];
}

/** Loopback, the host name, the listen IP and the extra names, each once (IPs compared in one spelling). */
export function servingSans(input: ServingSansInput): string[] {
  const listened = listenedIp(input.listenHost);
  const all = [
    ...LOOPBACK,
    input.hostName.toLowerCase(),
    ...(listened === undefined ? [] : [listened]),
    ...input.extra,
  ];
  return [...new Set(all.map(canonicalIp))].filter((san) => san.length > 0);
}

/** The IP a listener on `host` answers on; undefined for a name or for every interface (nobody dials 0.0.0.0). */
function listenedIp(host: string): string | undefined {
  if (isIP(host) === 0 || host === '0.0.0.0' || isEveryAddressIpv6(host)) return undefined;
  return host;
}

/**
 * One spelling per IPv6 address (compressed, lower case, no dotted quad), other values unchanged: `0:0:0:0:0:0:0:1`
 * and `::1` are one name, and the certificate encoder misreads the dotted form of `::ffff:10.0.0.5`.
 */
function canonicalIp(san: string): string {
  if (isIP(san) !== 6) return san;
  try {
    return new URL(`https://[${san}]/`).hostname.slice(1, -1);
  } catch {
    return san; // a zone ID (`fe80::1%eth0`) is no URL host: kept as given
  }
}
