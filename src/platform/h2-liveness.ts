// Whether the other end of an HTTP/2 session is still there, asked once one of its streams timed out: a PING it does
// not acknowledge within the grace time means the session carries nothing any more. Either a peer went silent with
// its connection open (a host gone without a FIN looks so for minutes), or nghttp2 stopped reading the session over a
// frame or header block it refused (it sends GOAWAY and tells node:http2 nothing, so no stream of it ever ends). A
// peer that is only slow to answer a request acknowledges at once. One check per session at a time.
import type { Http2Session } from 'node:http2';

const checking = new WeakSet<Http2Session>();

export function whenSessionSilent(session: Http2Session, graceMs: number, onSilent: () => void): void {
  if (session.destroyed || session.closed || checking.has(session)) return;
  checking.add(session);
  const timer = setTimeout(() => {
    checking.delete(session);
    if (!session.destroyed) onSilent();
  }, graceMs);
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
