// TCP tunnels over mTLS (ALPN meshauth-tcp/1): outbound listeners, the inbound handler, L4 policy checks.
export type { ResolveHost } from './resolve-host.js';
export { type AddressSource, resolveHostWith, systemResolveHost } from './resolve-host.js';
export { TCP_ALPN } from './tcp-alpn.js';
export { TcpInboundHandler, type TcpInboundOptions } from './tcp-inbound-handler.js';
export { TCP_LIMITS, type TcpLimits } from './tcp-limits.js';
export { TcpOutboundListeners, type TcpOutboundOptions, type TcpOutboundRoute } from './tcp-outbound-listeners.js';
export { assertTcpPolicy, tcpAuthzRequest, validateTcpPolicy } from './tcp-policy.js';
