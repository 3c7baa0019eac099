// What the policy's header conditions read of a view no listener built (headerLines for HTTP/1, h2HeaderView for
// HTTP/2; a listener's view carries the lines the app will get): every line, nothing the request's Connection names
// and no name with `_` (neither reaches the app).
import { describe, expect, it } from 'vitest';
import { h2HeaderView, headerLines } from '../../../../src/sidecar/inbound/request-checks.js';

describe('headerLines (HTTP/1)', () => {
  it('ok/every line of a repeated header, in arrival order, by lower-case name', () => {
    const view = headerLines(['X-Role', 'a', 'host', 'h', 'x-role', 'b']);
    expect(view.get('x-role')).toEqual(['a', 'b']);
    expect(view.get('host')).toEqual(['h']);
  });

  it('ok/names with "_" are not in the view (they are dropped before the app)', () => {
    const view = headerLines(['x-role', 'user', 'X_Role', 'admin']);
    expect(view.get('x-role')).toEqual(['user']);
    expect(view.has('x_role')).toBe(false);
  });

  it('ok/a header the Connection header names is not in the view, whichever line lists it', () => {
    const view = headerLines([
      'x-tenant',
      'a',
      'Connection',
      'close',
      'connection',
      'X-Tenant, x-other',
      'x-other',
      '1',
    ]);
    expect(view.has('x-tenant')).toBe(false);
    expect(view.has('x-other')).toBe(false);
    expect(view.get('connection')).toEqual(['close', 'X-Tenant, x-other']);
  });
});

describe('h2HeaderView', () => {
  it('ok/without "_" in any name the object itself is the view (no copy per request)', () => {
    const headers = { ':method': 'GET', 'x-role': 'a', 'set-cookie': ['b', 'c'] };
    expect(h2HeaderView(headers)).toBe(headers);
  });

  it('ok/with "_" in a name, every other line is listed by name, pseudo-headers left out', () => {
    const view = h2HeaderView({ ':path': '/', 'x-role': 'user', x_role: ['admin', 'x'] });
    expect(view).toEqual(new Map([['x-role', ['user']]]));
  });
});
