// The ALPN protocol IDs of a meshauth TCP tunnel. A client asking for one gets a byte tunnel to the
// peer's `inbound.tcp` app; an HTTP client asks for h2 / http/1.1, so the two can never be confused: a server that
// does not offer these IDs refuses the handshake (no_application_protocol) instead of speaking HTTP to it.

/**
 * The framed tunnel: each direction travels as frames of [32-bit length][bytes], and a frame of length 0 is the
 * sender's clean end of its stream (tcp-framing.ts). A TCP FIN under TLS is not authenticated and Node does not say
 * whether a close_notify came first, so only that frame tells a complete stream from a cut one.
 */
export const TCP_ALPN = 'meshauth-tcp/2';
/**
 * The raw tunnel of earlier builds: bytes as they come, a FIN as the end. Still accepted, for peers that offer only
 * it; there a peer's FIN cannot be told from a cut (a crash, a FIN injected on the path).
 */
export const TCP_ALPN_RAW = 'meshauth-tcp/1';
/** What a sidecar offers and accepts, the framed tunnel first. */
export const TCP_ALPNS: readonly string[] = [TCP_ALPN, TCP_ALPN_RAW];
