// Whether the other end of an HTTP/2 session is still there, asked once one of its streams timed out: a PING it does
// not acknowledge within the grace time means the session carries nothing any more. Either a peer went silent with
// its connection open (a host gone without a FIN looks so for minutes), or nghttp2 stopped reading the session over a
// frame or header block it refused (it sends GOAWAY and tells node:http2 nothing, so no stream of it ever ends). A
// peer that is only slow to answer a request acknowledges at once. One check per session at a time.
//
// A PING waits behind every byte already queued toward the peer: on a slow link under a large download its ACK can
// take longer than the grace while the session is plainly working. So when the grace runs out, the check looks at
// what moved on the connection since the PING: frames the peer sent (bytes read: a WINDOW_UPDATE as it consumes the
// download) and bytes handed to the connection as the link drains. A session where either moved gets another grace,
// one where neither did is silent (as a proxy that extends its keepalive timeout on any frame received). A session
// nghttp2 stopped reading writes nothing, so it is kept only while its peer goes on sending bytes, as a live session
// of that peer could be; a peer that reads and sends nothing moves nothing.
import type { Http2Session } from 'node:http2';

/**
 * The grace between sidecars (the inbound's clients, the outbound's peers): a live peer on the cluster's network
 * acknowledges within a round trip, and one behind a large transfer still moves bytes.
 */
export const MESH_PING_GRACE_MS = 1_000;

const checking = new WeakSet<Http2Session>();

export function whenSessionSilent(session: Http2Session, graceMs: number, onSilent: () => void): void {
  if (session.destroyed || session.closed || checking.has(session)) return;
  checking.add(session);
  let moved = progressOf(session);
  const expire = (): void => {
    if (session.destroyed) {
      checking.delete(session);
      return;
    }
    const now = progressOf(session);
    if (now !== moved) {
      moved = now;
      timer.refresh();
      return;
    }
    checking.delete(session);
    onSilent();
  };
  const timer = setTimeout(expire, graceMs);
  timer.unref();
  const acknowledged = () => {
    clearTimeout(timer);
    checking.delete(session);
  };
  try {
    // false: too many PINGs outstanding already, not this check's to judge.
    if (!session.ping(acknowledged)) acknowledged();
  } catch {
    acknowledged(); // closing meanwhile
  }
}

/**
 * What has moved on the session's connection so far, as one comparable value (read only when a grace runs out): the
 * bytes read from the peer and the bytes handed to the connection toward it. Frames merely queued in nghttp2 are not
 * progress: a session nghttp2 stopped reading keeps queueing (the PING itself, a reset) and sends none of it.
 */
function progressOf(session: Http2Session): string {
  try {
    const socket = session.socket;
    return `${socket.bytesRead}/${socket.bytesWritten}`;
  } catch {
    return ''; // destroyed meanwhile
  }
}
