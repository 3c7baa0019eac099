// The gateway's two listeners (public `listen`, `admin.listen`) on one address: refused when the config loads,
// naming both keys, as the sidecar's config does; the start used to fail later on the second bind with Node's raw
// `listen EADDRINUSE`. Pure. Port 0 (any free port, tests) never clashes.
import { formatHostPort, type HostPort } from '../config/host-port.js';
import { MeshauthError } from '../errors/index.js';

export function checkListenersApart(source: string, listeners: readonly [string, HostPort][]): void {
  for (const [index, [key, place]] of listeners.entries()) {
    if (place.port === 0) continue;
    const earlier = listeners.slice(0, index).find(([, other]) => other.port !== 0 && samePlace(other, place));
    if (earlier === undefined) continue;
    throw new MeshauthError(
      'MESHAUTH_ERR_CONFIG_INVALID',
      `${source}: ${key}: expected an address of its own, not the one of ${earlier[0]} (${formatHostPort(earlier[1])}): two listeners cannot bind one port`,
      { reason: 'config_listen_clash', detail: { file: source, key } },
    );
  }
}

/**
 * The same port on the same host as a connection would reach it: hosts compared in the URL parser's canonical
 * form (case, IPv4 short forms, IPv6 long forms, IPv4-mapped IPv6), a wildcard listener taking every host,
 * `localhost` standing for 127.0.0.1 and ::1. The gateway's default public listener is the wildcard 0.0.0.0.
 */
function samePlace(a: HostPort, b: HostPort): boolean {
  if (a.port !== b.port) return false;
  const [x, y] = [canonicalHost(a.host), canonicalHost(b.host)];
  const wildcard = (h: string) => h === '0.0.0.0' || h === '::' || h === '';
  if (x === y || wildcard(x) || wildcard(y)) return true;
  const local = (h: string) => h === '127.0.0.1' || h === '::1';
  return (x === 'localhost' && local(y)) || (y === 'localhost' && local(x));
}

function canonicalHost(host: string): string {
  let name: string;
  try {
    name = new URL(`http://${host.includes(':') ? `[${host}]` : host}/`).hostname;
  } catch {
    return host.toLowerCase();
  }
  name = name.replace(/^\[|\]$/g, '');
  // ::ffff:7f00:1 → 127.0.0.1
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(name);
  if (mapped === null) return name;
  const [hi, lo] = [Number.parseInt(mapped[1] as string, 16), Number.parseInt(mapped[2] as string, 16)];
  return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
}
