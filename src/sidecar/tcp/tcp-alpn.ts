// The ALPN protocol ID of a meshauth TCP tunnel (RFC 7301). A client asking for it gets a raw byte tunnel to the
// peer's `inbound.tcp` app; an HTTP client asks for h2 / http/1.1, so the two can never be confused: a server
// that does not offer this ID refuses the handshake (no_application_protocol) instead of speaking HTTP to it.
export const TCP_ALPN = 'meshauth-tcp/1';
