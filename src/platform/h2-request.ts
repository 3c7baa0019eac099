// One HTTP/2 client request, as ClientHttp2Session.request() makes it, without two costs of that call that are
// not the request's: measured alone (an h2 client on loopback, 32 streams at a time), Node 20 spends 80–110 µs of CPU
// per request in it and 37–45 µs with both removed; Node 24 46–58 µs and 36–45 µs (docs/performance.md, Round 19).
//
// - request() wraps the stream's start in `new AsyncResource(...).bind(fn)`, and AsyncResource's bind defines two
//   accessor properties on every function it returns, each made by util.deprecate (the `asyncResource` property,
//   DEP0172): on Node 20 that is about half of the call. The start function is only ever called, never inspected, so
//   for the duration of the call bind is one that returns the same closure without those properties: the function
//   still runs in the resource's async scope (AsyncLocalStorage and async_hooks see what they saw). Whatever bind was
//   in place (Node's, or an APM's wrapper) is put back before request() returns or throws. Code that runs inside the
//   call sees the swap too: on Node 24, subscribers of the `http2.client.stream.created` diagnostics channel, whose
//   bound functions then have no `length` and no `asyncResource`. Where the prototype cannot be written (frozen by a
//   hardened runtime), request() is called as it is.
// - request() copies its options and fills in the stream priority defaults it finds missing (parent, exclusive,
//   silent), changing the shape of the copy each time; given, they are only validated. The weight is left out:
//   Node 24 warns about it (priority signalling is deprecated), and it makes no difference here.
import { AsyncResource } from 'node:async_hooks';
import type { ClientHttp2Session, ClientHttp2Stream, OutgoingHttpHeaders } from 'node:http2';

const PRIORITY_DEFAULTS = { parent: 0, exclusive: false, silent: false } as const;
const WITH_BODY = Object.freeze({ endStream: false, ...PRIORITY_DEFAULTS });
const WITHOUT_BODY = Object.freeze({ endStream: true, ...PRIORITY_DEFAULTS });

type Bind = typeof AsyncResource.prototype.bind;

/**
 * AsyncResource.prototype.bind without the `length` and deprecated `asyncResource` properties on the function it
 * returns: `fn` runs in this resource's async scope, with the caller's `this` (or `thisArg`) and arguments.
 */
export function bindInScope(
  this: AsyncResource,
  fn: (...args: unknown[]) => unknown,
  thisArg?: unknown,
): (...args: unknown[]) => unknown {
  if (typeof fn !== 'function') throw new TypeError('The "fn" argument must be of type function');
  const resource = this;
  if (thisArg !== undefined) return (...args: unknown[]) => resource.runInAsyncScope(fn, thisArg, ...args);
  return function bound(this: unknown, ...args: unknown[]) {
    return resource.runInAsyncScope(fn, this, ...args);
  };
}

/** `session.request(headers, { endStream })`, at the cost of the request itself (see the top of this file). */
export function requestStream(
  session: ClientHttp2Session,
  headers: OutgoingHttpHeaders,
  endStream: boolean,
): ClientHttp2Stream {
  const options = endStream ? WITHOUT_BODY : WITH_BODY;
  const prototype = AsyncResource.prototype;
  const bind = prototype.bind;
  try {
    prototype.bind = bindInScope as unknown as Bind;
  } catch {
    return session.request(headers, options); // a frozen prototype (a hardened runtime): the call as it is
  }
  try {
    return session.request(headers, options);
  } finally {
    prototype.bind = bind;
  }
}
