// Binding a server and learning the port it got: shared by every listener of the sidecar, the gateway and the CA.
import { isIP, type ListenOptions, type Server } from 'node:net';
import { MeshauthError } from '../errors/index.js';
import { nodeHas } from './node-version.js';

/** Node lines whose `listen()` knows `reusePort`; older ones ignore the option and the second bind fails. */
export const REUSE_PORT_MIN_NODE = { major: 22, minor: 12 } as const;

/**
 * Systems whose kernel spreads connections over SO_REUSEPORT listeners; elsewhere (macOS, Windows) Node refuses the
 * option with ENOTSUP.
 */
export const REUSE_PORT_PLATFORMS: readonly NodeJS.Platform[] = ['linux', 'freebsd'];

/** Whether this Node on this system sets SO_REUSEPORT when `listen({ reusePort: true })` asks for it. */
export function reusePortSupported(
  version: string = process.versions.node,
  platform: NodeJS.Platform = process.platform,
): boolean {
  return (
    nodeHas([[REUSE_PORT_MIN_NODE.major, REUSE_PORT_MIN_NODE.minor]], version) &&
    REUSE_PORT_PLATFORMS.includes(platform)
  );
}

/** Why a bind fails, in the words an operator acts on (errno of listen(2)). */
const BIND_FAILURES: Readonly<Record<string, string>> = {
  EADDRINUSE: 'another process (or another listener of this one) holds the port',
  EACCES: 'the port is privileged (below 1024) or the user may not bind it',
  EADDRNOTAVAIL: "the address is not one of this host's",
};

/** `::` in any spelling (`0:0:…:0`): every address, which `bindOptions` binds for both families. */
export function isEveryAddressIpv6(host: string): boolean {
  return isIP(host) === 6 && /^[0:]+$/.test(host);
}

/** What `server.listen()` is given for a listen address. */
export function bindOptions(address: {
  readonly host: string;
  readonly port: number;
  readonly reusePort?: boolean;
}): ListenOptions & { reusePort?: boolean } {
  // `[::]` means every interface of both families. Node binds exactly that when no host is given: `::` with
  // IPV6_V6ONLY off (IPv4 clients arrive as ::ffff:a.b.c.d), or 0.0.0.0 on a host without IPv6, where an explicit
  // `::` fails with EAFNOSUPPORT and an injected sidecar would not start on an IPv4-only node. Every other host,
  // 0.0.0.0 included, is bound as written.
  const everyFamily = isEveryAddressIpv6(address.host);
  // `reusePort` is newer than the Node typings this project builds against.
  const options: ListenOptions & { reusePort?: boolean } = everyFamily
    ? { port: address.port }
    : { host: address.host, port: address.port };
  if (address.reusePort === true) options.reusePort = true;
  return options;
}

/**
 * Listens on `address` (port 0 picks a free port) and resolves with the port bound. With `reusePort`, several
 * processes may bind the same address and the kernel spreads new connections over them (SO_REUSEPORT). A failed
 * bind is MESHAUTH_ERR_LISTEN naming `setting` (the config key or flag the address came from), not Node's bare
 * `listen EADDRINUSE`, so the operator learns which setting to change.
 */
export function listenOn(
  server: Server,
  address: { readonly host: string; readonly port: number; readonly reusePort?: boolean },
  setting = 'listen',
): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => reject(listenError(error, address, setting));
    server.once('error', onError);
    server.listen(bindOptions(address), () => {
      server.off('error', onError);
      const bound = server.address();
      resolve(typeof bound === 'object' && bound !== null ? bound.port : address.port);
    });
  });
}

function listenError(
  error: NodeJS.ErrnoException,
  address: { readonly host: string; readonly port: number },
  setting: string,
): MeshauthError {
  const code = error.code ?? 'error';
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  const why = BIND_FAILURES[code];
  return new MeshauthError(
    'MESHAUTH_ERR_LISTEN',
    `${setting}: cannot listen on ${host}:${address.port}: ${code}${why === undefined ? '' : ` (${why})`}`,
    { reason: 'listen_failed', detail: { key: setting, errno: code }, cause: error },
  );
}
