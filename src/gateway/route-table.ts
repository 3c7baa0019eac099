// Host + path prefix → route. Pure. Exact hosts beat `*`; among those, the longest prefix wins. Prefixes match on
// segment boundaries of the normalized path (`/api` matches `/api` and `/api/x`, never `/apix`).
import type { GatewayRoute } from './gateway-config.js';

export class RouteTable {
  readonly #byHost = new Map<string, GatewayRoute[]>();

  constructor(routes: readonly GatewayRoute[]) {
    for (const route of routes) {
      const list = this.#byHost.get(route.host) ?? [];
      list.push(route);
      this.#byHost.set(route.host, list);
    }
    for (const list of this.#byHost.values()) list.sort((a, b) => b.pathPrefix.length - a.pathPrefix.length);
  }

  /** `host` lower case without port; `path` normalized (no query). */
  match(host: string, path: string): GatewayRoute | undefined {
    return pick(this.#byHost.get(host), path) ?? pick(this.#byHost.get('*'), path);
  }
}

function pick(routes: readonly GatewayRoute[] | undefined, path: string): GatewayRoute | undefined {
  if (routes === undefined) return undefined;
  for (const route of routes) if (prefixMatches(route.pathPrefix, path)) return route;
  return undefined;
}

export function prefixMatches(prefix: string, path: string): boolean {
  if (prefix === '/' || prefix === path) return true;
  if (!path.startsWith(prefix)) return false;
  return prefix.endsWith('/') || path.charCodeAt(prefix.length) === 0x2f;
}
