// Every value of a repeated or comma-joined header is evaluated, in the direction that can only make the outcome
// stricter (allow: every value listed; deny: any value listed).
import { describe, expect, it } from 'vitest';
import { headerMatches } from '../../../src/authz/policy/match-headers.js';

const ROLE = { name: 'x-role', allowed: ['user', 'viewer'] };

describe('header conditions', () => {
  it.each([
    ['ok/single-listed', ['user'], true, true],
    ['ok/all-listed-repeated', ['user', 'viewer'], true, true],
    ['ok/all-listed-comma-joined-with-ows', ['user , viewer'], true, true],
    ['fail/every-repeated-extra-value', ['user', 'admin'], false, true],
    ['fail/every-comma-joined-extra-value', ['user,admin'], false, true],
    ['fail/every-extra-value-first', ['admin,user'], false, true],
    ['fail/unlisted', ['admin'], false, false],
    ['fail/empty-element', ['user,'], false, true],
    ['fail/absent', undefined, false, false],
    ['fail/present-without-values', [], false, false],
    ['fail/case-sensitive-values', ['User'], false, false],
  ])('%s', (_name, values, every, any) => {
    const headers = new Map<string, string[]>();
    if (values !== undefined) headers.set('x-role', values);
    expect(headerMatches(ROLE, headers, 'every')).toBe(every);
    expect(headerMatches(ROLE, headers, 'any')).toBe(any);
  });

  it('ok/records are read by own property only', () => {
    expect(headerMatches(ROLE, { 'x-role': ['viewer'] }, 'every')).toBe(true);
    const proto = { name: 'constructor', allowed: ['x'] };
    expect(headerMatches(proto, {}, 'any')).toBe(false);
  });

  it('ok/a record with one string per name (Node IncomingHttpHeaders) is read like a one-value list', () => {
    expect(headerMatches(ROLE, { 'x-role': 'user, viewer' }, 'every')).toBe(true);
    expect(headerMatches(ROLE, { 'x-role': 'user,admin' }, 'every')).toBe(false);
    expect(headerMatches(ROLE, { 'x-role': 'admin' }, 'any')).toBe(false);
  });
});
