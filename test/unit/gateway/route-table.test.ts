// Found by a review (2026-12-03): the route table compared the normalized path as it came, so `/v1/items%3Apurge`
// took the route of `/` past the route of `/v1/items:purge` (its login, roles and scopes) while an app that decodes
// the path before routing ran the handler of `/v1/items:purge`.
import { describe, expect, it } from 'vitest';
import type { GatewayRoute } from '../../../src/gateway/gateway-config.js';
import { RouteTable } from '../../../src/gateway/route-table.js';

function table(...prefixes: string[]): RouteTable {
  return new RouteTable(prefixes.map((pathPrefix) => ({ name: pathPrefix, host: '*', pathPrefix }) as GatewayRoute));
}

describe('gateway route table', () => {
  it('fail/an escaped delimiter takes the route its decoded path names, not a shorter prefix', () => {
    const routes = table('/', '/v1/items:purge', '/users/@me', '/files/*x');
    expect(routes.match('shop.example', '/v1/items%3Apurge')?.name).toBe('/v1/items:purge');
    expect(routes.match('shop.example', '/v1/items%3Apurge/42')?.name).toBe('/v1/items:purge');
    expect(routes.match('shop.example', '/users/%40me')?.name).toBe('/users/@me');
    expect(routes.match('shop.example', '/files/%2Ax')?.name).toBe('/files/*x');
  });

  it('ok/no double decoding, segment boundaries kept, the longest decoded prefix wins', () => {
    const routes = table('/', '/api', '/v1/items:purge', '/v1/items%3A');
    expect(routes.match('h', '/v1/items%253Apurge')?.name).toBe('/');
    expect(routes.match('h', '/apix')?.name).toBe('/');
    expect(routes.match('h', '/api/x')?.name).toBe('/api');
    expect(routes.match('h', '/v1/items:purge')?.name).toBe('/v1/items:purge');
    expect(routes.match('h', '/v1/items:')?.name).toBe('/v1/items%3A');
  });

  it('fail/a path whose cut at an escaped ? or # names another route → 400 PATH_AMBIGUOUS; the same route → that route', () => {
    const routes = table('/', '/admin', '/tags', '/status');
    for (const path of ['/admin%3Fx', '/admin%23', '/admin%3Fanything/goes', '/status%3F/secret/admin']) {
      expect(() => routes.match('h', path), path).toThrow(
        expect.objectContaining({ code: 'MESHAUTH_ERR_PATH_AMBIGUOUS', reason: 'bad_percent_encoding' }),
      );
    }
    // Both readings name the same route: served as before.
    expect(routes.match('h', '/tags/%23rust')?.name).toBe('/tags');
    expect(routes.match('h', '/public%3F/admin')?.name).toBe('/');
  });
});
