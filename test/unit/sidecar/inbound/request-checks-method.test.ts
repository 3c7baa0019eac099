// refusedForMethod: a head node:http refused for its method gets MESHAUTH_ERR_METHOD_INVALID however it was split.
// Found by a probe of the two HTTP/1.1 lanes: `get /p HTTP/1.1` sent as `ge` then the rest was a parse error
// (MESHAUTH_ERR_BAD_REQUEST) while the same bytes in one read were METHOD_INVALID.
import { describe, expect, it } from 'vitest';
import { refusedForMethod } from '../../../../src/sidecar/inbound/request-checks.js';

const refused = (packet: string, code = 'HPE_INVALID_METHOD', bytesParsed = 0) =>
  refusedForMethod(Object.assign(new Error('Parse Error'), { code, rawPacket: Buffer.from(packet), bytesParsed }));

describe('refusedForMethod', () => {
  it.each([['get /p HTTP/1.1\r\n'], ['g'], ['ge'], ['FOO']])(
    'fail/%j (the whole line or the part of the method one read held) → a method refusal',
    (packet) => {
      expect(refused(packet)).toBe(true);
    },
  );

  it.each([
    ['a forwarded method', 'GET'],
    ['no method at all', ''],
    ['longer than any method', 'x'.repeat(40)],
    ['not a token', '\u0001\u0002'],
  ])('ok/%s → not a method refusal', (_name, packet) => {
    expect(refused(packet)).toBe(false);
  });

  it('ok/another parse error is not a method refusal', () => {
    expect(refused('get /p HTTP/1.1\r\n', 'HPE_INVALID_HEADER_TOKEN')).toBe(false);
  });
});
