// TCP tunnels over mTLS (ALPN meshauth-tcp/2, framed; meshauth-tcp/1 still accepted): outbound listeners, the inbound
// handler, L4 policy checks.
export type { ResolveHost } from './resolve-host.js';
export { type AddressSource, resolveHostWith, systemResolveHost } from './resolve-host.js';
export { TCP_ALPN, TCP_ALPN_RAW, TCP_ALPNS } from './tcp-alpn.js';
export { TcpInboundHandler, type TcpInboundOptions } from './tcp-inbound-handler.js';
export { TCP_LIMITS, type TcpLimits } from './tcp-limits.js';
export { TcpOutboundListeners, type TcpOutboundOptions, type TcpOutboundRoute } from './tcp-outbound-listeners.js';
export { assertTcpPolicy, tcpAuthzRequest, validateTcpPolicy } from './tcp-policy.js';
