// Where each sidecar listener is, as `host:port` (IPv6 in brackets), for the "sidecar listening" line: the host as
// configured with the port actually bound (port 0 in the config picks a free one). Pure.
import { formatHostPort, type SidecarConfig } from '../config/index.js';

export interface BoundPorts {
  readonly inboundPort: number;
  readonly outboundPort: number;
  readonly adminPort: number;
  readonly externalPort: number | undefined;
  /** `outbound.tcp` listen key → bound port. */
  readonly tcpPorts: ReadonlyMap<string, number> | undefined;
}

export interface ListeningAddresses {
  readonly inbound: string;
  readonly outbound: string;
  readonly admin: string;
  readonly external?: string;
  /** `outbound.tcp` listen key → bound address. */
  readonly tcp?: Readonly<Record<string, string>>;
}

export function listeningAddresses(config: SidecarConfig, ports: BoundPorts): ListeningAddresses {
  const at = (host: string, port: number) => formatHostPort({ host, port });
  const external = config.inbound.external;
  const tcp =
    ports.tcpPorts === undefined
      ? undefined
      : Object.fromEntries(
          [...ports.tcpPorts].map(([key, port]) => [key, at(config.outbound.tcp.get(key)?.listen.host ?? '', port)]),
        );
  return {
    inbound: at(config.inbound.listen.host, ports.inboundPort),
    outbound: at(config.outbound.listen.host, ports.outboundPort),
    admin: at(config.admin.listen.host, ports.adminPort),
    ...(external === undefined || ports.externalPort === undefined
      ? {}
      : { external: at(external.listen.host, ports.externalPort) }),
    ...(tcp === undefined ? {} : { tcp }),
  };
}
