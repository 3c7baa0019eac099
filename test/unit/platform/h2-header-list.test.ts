// The header lists handed to node:http2: which runtimes take them as arrays, and the object form older ones get.
import { describe, expect, it } from 'vitest';
import {
  headerListSize,
  headerObject,
  nodeHas,
  RAW_REQUEST_SINCE,
  RAW_RESPONSE_SINCE,
} from '../../../src/platform/index.js';

describe('the releases whose node:http2 takes header arrays', () => {
  it.each([
    ['20.20.2', false, false],
    ['22.16.0', false, false],
    ['22.17.0', true, false],
    ['22.20.0', true, true],
    ['23.11.0', false, false],
    ['24.0.0', true, false],
    ['24.6.0', true, false],
    ['24.7.0', true, true],
    ['26.0.0', true, true],
  ])('%s: request() %s, respond() %s', (version, request, respond) => {
    expect([nodeHas(RAW_REQUEST_SINCE, version), nodeHas(RAW_RESPONSE_SINCE, version)]).toEqual([request, respond]);
  });
});

describe('headerObject', () => {
  it('merges a repeated name into one array, in order, on an object without a prototype', () => {
    const object = headerObject([':status', '200', 'set-cookie', 'a', '__proto__', 'x', 'set-cookie', 'b']);
    expect(Object.getPrototypeOf(object)).toBeNull();
    expect({ ...object }).toEqual({ ':status': '200', 'set-cookie': ['a', 'b'], ['__proto__']: 'x' });
  });
});

describe('headerListSize', () => {
  it('counts name, value and 32 per field, as SETTINGS_MAX_HEADER_LIST_SIZE does', () => {
    expect(headerListSize([':method', 'GET', 'a', 'bc'])).toBe(7 + 3 + 32 + 1 + 2 + 32);
  });
});
