// Host + path prefix → route. Pure. Exact hosts beat `*`; among those, the longest prefix wins. Prefixes match on
// segment boundaries of the normalized path (`/api` matches `/api` and `/api/x`, never `/apix`). Both sides compare
// in the policy's match form (pathMatchForm): an app that decodes the path before routing reads `/v1/items%3Apurge`
// as `/v1/items:purge`, so that request must get the route of `/v1/items:purge` (its login, roles and scopes), not the
// route of a shorter prefix. For the same reason a path is also matched cut at its first escaped `?` or `#` (an app
// that decodes before it splits off the query reads `/admin%3Fx` as `/admin`, one that does not reads a path under
// `/`): when the two readings name different routes, the request is refused, since either route's login, roles and
// scopes would be the wrong ones for the other reading.
import { cutAtEscapedDelimiter, pathMatchForm } from '../authz/index.js';
import { MeshauthError } from '../errors/index.js';
import type { GatewayRoute } from './gateway-config.js';

interface Entry {
  readonly route: GatewayRoute;
  /** The route's prefix in match form. */
  readonly prefix: string;
}

export class RouteTable {
  readonly #byHost = new Map<string, Entry[]>();

  constructor(routes: readonly GatewayRoute[]) {
    for (const route of routes) {
      const list = this.#byHost.get(route.host) ?? [];
      list.push({ route, prefix: pathMatchForm(route.pathPrefix) });
      this.#byHost.set(route.host, list);
    }
    for (const list of this.#byHost.values()) list.sort((a, b) => b.prefix.length - a.prefix.length);
  }

  /**
   * `host` lower case without port; `path` normalized (no query). Throws 400 MESHAUTH_ERR_PATH_AMBIGUOUS when the
   * path and its cut at an escaped `?` or `#` name different routes.
   */
  match(host: string, path: string): GatewayRoute | undefined {
    const form = pathMatchForm(path);
    const cut = cutAtEscapedDelimiter(form);
    return this.#pick(this.#byHost.get(host), form, cut) ?? this.#pick(this.#byHost.get('*'), form, cut);
  }

  #pick(entries: readonly Entry[] | undefined, form: string, cut: string | undefined): GatewayRoute | undefined {
    const whole = pick(entries, form);
    if (cut === undefined) return whole?.route;
    const other = pick(entries, cut);
    if (other !== undefined && other !== whole) {
      throw new MeshauthError(
        'MESHAUTH_ERR_PATH_AMBIGUOUS',
        'an escaped ? or # in the path names another route to an app that decodes the path first',
        { reason: 'bad_percent_encoding' },
      );
    }
    return whole?.route;
  }
}

function pick(entries: readonly Entry[] | undefined, path: string): Entry | undefined {
  if (entries === undefined) return undefined;
  for (const entry of entries) if (prefixMatches(entry.prefix, path)) return entry;
  return undefined;
}

export function prefixMatches(prefix: string, path: string): boolean {
  if (prefix === '/' || prefix === path) return true;
  if (!path.startsWith(prefix)) return false;
  return prefix.endsWith('/') || path.charCodeAt(prefix.length) === 0x2f;
}
