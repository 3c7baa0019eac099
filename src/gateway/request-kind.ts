// Is this request a browser navigation (send it to the provider to sign in) or an API call (answer 401 with
// WWW-Authenticate, never a redirect a script cannot follow)? Pure. Fetch metadata (Sec-Fetch-Mode) decides when
// present; otherwise a bearer Authorization, an XMLHttpRequest marker or an Accept without HTML mark an API call.
import type { IncomingHttpHeaders } from 'node:http';

export function isApiRequest(method: string, headers: IncomingHttpHeaders): boolean {
  if (method !== 'GET' && method !== 'HEAD') return true;
  const authorization = headers.authorization;
  if (typeof authorization === 'string' && /^bearer\s/i.test(authorization)) return true;
  const mode = headers['sec-fetch-mode'];
  if (mode === 'navigate') return false;
  if (typeof mode === 'string') return true; // cors, no-cors, same-origin: fetch / XHR
  if (headers['x-requested-with'] === 'XMLHttpRequest') return true;
  const accept = headers.accept;
  if (typeof accept !== 'string' || accept === '' || accept.includes('text/html')) return false;
  return accept.includes('json') || !accept.includes('*/*');
}

const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * A state-changing request authenticated by the session cookie must come from this origin (login CSRF's sibling,
 * classic CSRF): Sec-Fetch-Site same-origin (or none: typed by the user), else Origin equal to ours. Without
 * either header it is refused — every browser that sends cookies on cross-site POSTs sends one of them.
 */
export function isCrossSite(method: string, headers: IncomingHttpHeaders, ownOrigin: string): boolean {
  if (SAFE_METHODS.has(method)) return false;
  const site = headers['sec-fetch-site'];
  if (typeof site === 'string') return site !== 'same-origin' && site !== 'none';
  const origin = headers.origin;
  if (typeof origin === 'string') return origin !== ownOrigin;
  return true;
}

/**
 * A request another site started (Sec-Fetch-Site cross-site or same-site), whatever its method: for the few GET
 * endpoints that change state. Without the header (an older browser, a script) it is not refused.
 */
export function isCrossSiteNavigation(headers: IncomingHttpHeaders): boolean {
  const site = headers['sec-fetch-site'];
  return site === 'cross-site' || site === 'same-site';
}
