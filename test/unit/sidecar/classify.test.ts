// Error classification on the data path and the bounded reasons of failed handshakes.
import { describe, expect, it } from 'vitest';
import { MeshauthError } from '../../../src/errors/index.js';
import { classifyAppError, classifyPeerError } from '../../../src/sidecar/index.js';
import { egressMatcher, isLoopbackTarget } from '../../../src/sidecar/outbound/egress-matcher.js';
import {
  closedBeforeHandshake,
  HANDSHAKE_FAILURE_REASONS,
  peerConnectFailureReason,
  svidFailureReason,
  tlsClientErrorReason,
} from '../../../src/tls/index.js';

const err = (code: string) => Object.assign(new Error(code), { code });

describe('classifyAppError', () => {
  it.each([
    ['fail/refused → 503', 'ECONNREFUSED', 'MESHAUTH_ERR_UPSTREAM_UNAVAILABLE'],
    ['fail/reset → 503', 'UND_ERR_SOCKET', 'MESHAUTH_ERR_UPSTREAM_UNAVAILABLE'],
    ['fail/headers timeout → 504', 'UND_ERR_HEADERS_TIMEOUT', 'MESHAUTH_ERR_UPSTREAM_TIMEOUT'],
    ['fail/body timeout → 504', 'UND_ERR_BODY_TIMEOUT', 'MESHAUTH_ERR_UPSTREAM_TIMEOUT'],
    ['fail/bad framing → 502', 'HPE_INVALID_CONSTANT', 'MESHAUTH_ERR_UPSTREAM_PROTOCOL'],
  ])('%s', (_name, code, expected) => {
    expect(classifyAppError(err(code)).code).toBe(expected);
  });
});

describe('classifyPeerError', () => {
  it('fail/identity mismatch wrapped in a cause stays a 502', () => {
    const mismatch = new MeshauthError('MESHAUTH_ERR_PEER_IDENTITY', 'x');
    const wrapped = new Error('connect failed', { cause: mismatch });
    expect(classifyPeerError(wrapped).status).toBe(502);
  });
  it('fail/refused → 503 peer unavailable', () => {
    expect(classifyPeerError(err('ECONNREFUSED')).code).toBe('MESHAUTH_ERR_PEER_UNAVAILABLE');
  });
});

describe('handshake failure reasons', () => {
  it.each([
    ['fail/no cert', err('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE'), null, 'no_client_cert'],
    ['fail/expired', err('ECONNRESET'), 'CERT_HAS_EXPIRED', 'expired'],
    ['fail/not yet valid', err('ECONNRESET'), 'CERT_NOT_YET_VALID', 'not_yet_valid'],
    ['fail/unknown CA', err('ECONNRESET'), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unknown_ca'],
    ['fail/name constraints', err('ECONNRESET'), 'PERMITTED_SUBTREE_VIOLATION', 'trust_domain'],
    ['fail/intermediate without cA (C15)', err('ECONNRESET'), 'INVALID_CA', 'bad_intermediate'],
    ['fail/pathLen exceeded (C15)', err('ECONNRESET'), 'PATH_LENGTH_EXCEEDED', 'bad_intermediate'],
    ['fail/a purpose refused (C15: intermediate cA=false)', err('ECONNRESET'), 'INVALID_PURPOSE', 'bad_purpose'],
    ['fail/SHA-1 signature below the security level (C19)', err('ECONNRESET'), 'CA_MD_TOO_WEAK', 'policy'],
    ['fail/oversized certificate chain (C19)', err('ERR_SSL_EXCESSIVE_MESSAGE_SIZE'), null, 'policy'],
    ['fail/plain-text HTTP (C17)', err('ERR_SSL_HTTP_REQUEST'), null, 'not_tls'],
    ['fail/plain-text CONNECT (C17)', err('ERR_SSL_HTTPS_PROXY_REQUEST'), null, 'not_tls'],
    ['fail/no TLS record header (C17)', err('ERR_SSL_WRONG_VERSION_NUMBER'), null, 'not_tls'],
    ['fail/old protocol', err('ERR_SSL_UNSUPPORTED_PROTOCOL'), null, 'protocol_version'],
    ['fail/no ALPN protocol in common (T06)', err('ERR_SSL_NO_APPLICATION_PROTOCOL'), null, 'no_application_protocol'],
    ['fail/anything else', err('EPIPE'), 'SOMETHING_NEW', 'other'],
  ])('%s', (_name, error, verify, expected) => {
    const reason = tlsClientErrorReason(error, verify);
    expect(reason).toBe(expected);
    expect(HANDSHAKE_FAILURE_REASONS).toContain(reason);
  });
  it('ok/SVID validator reasons map onto the bounded set', () => {
    const svid = (reason: string) => new MeshauthError('MESHAUTH_ERR_SVID_CHAIN', 'x', { reason });
    expect(svidFailureReason(svid('multiple_uri_san'))).toBe('multiple_uri_san');
    expect(svidFailureReason(svid('bad_intermediate'))).toBe('bad_intermediate');
    expect(svidFailureReason(svid('policy'))).toBe('policy');
    expect(svidFailureReason(svid('root_id_leaf'))).toBe('other');
    expect(svidFailureReason(new Error('x'))).toBe('other');
  });
});

describe('egressMatcher', () => {
  const allowed = egressMatcher(['api.example.com', '*.googleapis.com']);
  it.each([
    ['ok/exact', 'api.example.com', true],
    ['ok/exact, other case, trailing dot', 'API.Example.com.', true],
    ['ok/wildcard subdomain', 'storage.googleapis.com', true],
    ['fail/wildcard does not match the apex', 'googleapis.com', false],
    ['fail/suffix trick', 'evilgoogleapis.com', false],
    ['fail/other host', 'example.com', false],
  ])('%s', (_name, host, expected) => {
    expect(allowed(host)).toBe(expected);
  });
});

describe('isLoopbackTarget', () => {
  it.each([
    '127.0.0.1',
    '127.9.8.7',
    '0.0.0.0',
    '0.1.2.3',
    '::',
    '::1',
    '0:0:0:0:0:0:0:1',
    '0::0',
    '::ffff:127.0.0.1',
    '::FFFF:7f00:1',
    // The IPv4-mapped unspecified address: Linux connects it to the local host (found by an outside audit).
    '::ffff:0.0.0.0',
    '::ffff:0:0',
    'localhost',
    'app.localhost',
  ])('fail/%s is this machine', (host) => {
    expect(isLoopbackTarget(host)).toBe(true);
  });

  it.each(['10.0.0.1', '::ffff:10.0.0.1', '2001:db8::1', 'example.com', '128.0.0.1'])('ok/%s is elsewhere', (host) => {
    expect(isLoopbackTarget(host)).toBe(false);
  });
});

describe('peerConnectFailureReason (outbound handshakes)', () => {
  const wrapped = (reason: string) =>
    new MeshauthError('MESHAUTH_ERR_PEER_IDENTITY', 'x', {
      reason: 'peer_svid_invalid',
      cause: new MeshauthError('MESHAUTH_ERR_SVID_CHAIN', 'y', { reason }),
    });
  it.each([
    [
      'fail/route expects another ID',
      'identity',
      new MeshauthError('MESHAUTH_ERR_PEER_IDENTITY', 'x', { reason: 'peer_id_mismatch' }),
      'peer_id_mismatch',
    ],
    ['fail/server SVID breaks a rule', 'identity', wrapped('multiple_uri_san'), 'multiple_uri_san'],
    ['fail/server chain through a workload intermediate', 'identity', wrapped('bad_intermediate'), 'bad_intermediate'],
    ['fail/identity without a reason', 'identity', new Error('peer identity was not verified'), 'other'],
    ['fail/chain not under our roots', 'connect', err('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), 'unknown_ca'],
    ['fail/server SVID expired', 'connect', err('CERT_HAS_EXPIRED'), 'expired'],
    ['fail/an alert from OpenSSL', 'connect', err('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION'), 'protocol_version'],
    [
      'fail/the server offers none of our ALPN protocols',
      'connect',
      err('ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL'),
      'no_application_protocol',
    ],
  ])('%s → %s', (_name, phase, cause, expected) => {
    expect(peerConnectFailureReason(phase, cause)).toBe(expected);
  });
  it.each([
    ['ok/refused is the endpoint’s health, not a certificate', 'connect', err('ECONNREFUSED')],
    ['ok/reset before the handshake ended', 'connect', err('ECONNRESET')],
    ['ok/timed out', 'timeout', undefined],
  ])('%s → not counted', (_name, phase, cause) => {
    expect(peerConnectFailureReason(phase, cause)).toBeUndefined();
  });
});

describe('closedBeforeHandshake (inbound and external listeners)', () => {
  it.each([
    ['ok/FIN or RST before a byte: a TCP health check, a port scan', err('ECONNRESET'), 0, true],
    ['fail/a ClientHello cut short', err('ECONNRESET'), 6, false],
    ['fail/plain text', err('ERR_SSL_HTTP_REQUEST'), 18, false],
    ['fail/silent until the handshake timeout closed it', err('ERR_TLS_HANDSHAKE_TIMEOUT'), 0, false],
    ['fail/byte count unknown (no TCP socket found)', err('ECONNRESET'), undefined, false],
  ] as const)('%s → %s', (_name, error, bytesRead, expected) => {
    expect(closedBeforeHandshake(error, bytesRead)).toBe(expected);
  });
});
