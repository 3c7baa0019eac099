// The gateway's two listeners (public `listen`, `admin.listen`) on one address: refused when the config loads,
// naming both keys, as the sidecar's config does; the start used to fail later on the second bind with Node's raw
// `listen EADDRINUSE`. Pure. Port 0 (any free port, tests) never clashes.
import { formatHostPort, type HostPort, samePlace } from '../config/host-port.js';
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
