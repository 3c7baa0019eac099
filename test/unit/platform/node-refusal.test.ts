import { describe, expect, it } from 'vitest';
import { nodeRefusal } from '../../../src/platform/node-refusal.js';

describe('nodeRefusal', () => {
  it.each([
    [
      'ok/node:http request timeout',
      'ERR_HTTP_REQUEST_TIMEOUT',
      408,
      'MESHAUTH_ERR_REQUEST_TIMEOUT',
      'request_timeout',
    ],
    ['ok/head too large', 'HPE_HEADER_OVERFLOW', 431, 'MESHAUTH_ERR_HEADERS_TOO_LARGE', 'headers_too_large'],
    ['ok/any other parser code', 'HPE_INVALID_CHUNK_SIZE', 400, 'MESHAUTH_ERR_BAD_REQUEST', 'http_malformed'],
    ['ok/an unknown code', 'HPE_SOMETHING_NEW', 400, 'MESHAUTH_ERR_BAD_REQUEST', 'http_malformed'],
    ['ok/no code', undefined, 400, 'MESHAUTH_ERR_BAD_REQUEST', 'http_malformed'],
  ] as const)('%s', (_name, parserCode, status, code, reason) => {
    const error = nodeRefusal(parserCode);
    expect(error.status).toBe(status);
    expect(error.code).toBe(code);
    expect(error.reason).toBe(reason);
  });

  it("ok/the CA's own code for a malformed request; the others unchanged", () => {
    expect(nodeRefusal('HPE_LF_EXPECTED', 'MESHAUTH_ERR_CA_BAD_REQUEST')).toMatchObject({
      code: 'MESHAUTH_ERR_CA_BAD_REQUEST',
      status: 400,
      reason: 'http_malformed',
    });
    expect(nodeRefusal('HPE_HEADER_OVERFLOW', 'MESHAUTH_ERR_CA_BAD_REQUEST').code).toBe(
      'MESHAUTH_ERR_HEADERS_TOO_LARGE',
    );
  });
});
