// authenticatePeer: the TLS handshake's verdict on the client's chain (OpenSSL's, against the bundle's roots) and
// the SVID rules on the leaf, read alone. Every failure is MESHAUTH_ERR_CA_UNAUTHENTICATED with a client_cert_*
// reason; the chain the client sent is never read. The socket is handed over in the shape Node's TLSSocket has
// (the handshake itself is covered by the CA integration and e2e tests, ca-client-chain-refusals among them).
import type { IncomingMessage } from 'node:http';
import { beforeAll, describe, expect, it } from 'vitest';
import { authenticatePeer, type PeerTrust } from '../../../src/ca/peer-svid.js';
import { MeshauthError } from '../../../src/errors/index.js';
import { TestCa, type TestSvid } from '../../helpers/test-ca.js';

let ca: TestCa;
let svid: TestSvid;

beforeAll(async () => {
  ca = await TestCa.create('example.org');
  svid = await ca.issue();
});

/**
 * A request whose socket reports `leaf` as the client's certificate and the handshake's verdict (`authorized`, or
 * OpenSSL's code). `reads` counts leaf reads; a read of the whole chain fails the test.
 */
function requestWith(
  leaf: Buffer | undefined,
  verdict: true | string = true,
): { req: IncomingMessage; reads: () => number } {
  let calls = 0;
  const socket = {
    authorized: verdict === true,
    authorizationError: verdict === true ? null : verdict,
    getPeerCertificate: (detailed?: boolean) => {
      if (detailed === true) throw new Error('the chain the client sent was read');
      calls++;
      // Node's answer for a connection without a client certificate is an empty object.
      return leaf === undefined ? {} : { raw: leaf };
    },
  };
  return { req: { socket } as unknown as IncomingMessage, reads: () => calls };
}

/** The CA's bundle and current intermediate, as authenticatePeer reads them from the CA's material. */
function trust(): PeerTrust {
  return { bundle: ca.bundle, issuer: { certificate: ca.intermediate } };
}

function outcome(run: () => unknown): { id?: string; code?: string; reason?: string | undefined } {
  try {
    return { id: String((run() as { id: unknown }).id) };
  } catch (error) {
    expect(error).toBeInstanceOf(MeshauthError);
    return { code: (error as MeshauthError).code, reason: (error as MeshauthError).reason };
  }
}

describe('authenticatePeer', () => {
  it('ok/a leaf whose chain the handshake verified → its SPIFFE ID and its end (a JWT-SVID expires no later)', () => {
    const { req } = requestWith(Buffer.from(svid.leaf.rawData));
    expect(outcome(() => authenticatePeer(req, trust(), new Date(), 'renewal'))).toEqual({ id: svid.id });
    expect(authenticatePeer(req, trust(), new Date(), 'token request').notAfter).toEqual(svid.leaf.notAfter);
  });

  it('ok/a second request on the same connection is authenticated from the leaf read for the first', () => {
    const { req, reads } = requestWith(Buffer.from(svid.leaf.rawData));
    expect(outcome(() => authenticatePeer(req, trust(), new Date(), 'renewal'))).toEqual({ id: svid.id });
    expect(outcome(() => authenticatePeer(req, trust(), new Date(), 'token request'))).toEqual({ id: svid.id });
    expect(reads()).toBe(1);
  });

  it('fail/no client certificate', () => {
    const { req } = requestWith(undefined, 'UNABLE_TO_GET_ISSUER_CERT');
    expect(outcome(() => authenticatePeer(req, trust(), new Date(), 'renewal'))).toEqual({
      code: 'MESHAUTH_ERR_CA_UNAUTHENTICATED',
      reason: 'no_credential',
    });
  });

  it.each([
    ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'client_cert_unknown_ca'],
    ['SELF_SIGNED_CERT_IN_CHAIN', 'client_cert_unknown_ca'],
    ['CERT_SIGNATURE_FAILURE', 'client_cert_unknown_ca'],
    ['CERT_HAS_EXPIRED', 'client_cert_expired'],
    ['CERT_NOT_YET_VALID', 'client_cert_not_yet_valid'],
    ['permitted subtree violation', 'client_cert_name_constraints'], // OpenSSL's words: Node has no name for it
    ['key usage does not include certificate signing', 'client_cert_issuer_key_usage'],
    ['unhandled critical extension', 'client_cert_critical_extension'],
    // OpenSSL writes these with capitals; the table holds them lower-cased.
    ['CA signature digest algorithm too weak', 'client_cert_weak_signature'],
    ['EE key too small', 'client_cert_weak_key'],
    ['CA certificate key too weak', 'client_cert_weak_key'],
    ['INVALID_PURPOSE', 'client_cert_purpose'],
    ['PATH_LENGTH_EXCEEDED', 'client_cert_path_length'],
    ['UNSPECIFIED', 'client_cert_invalid'],
    ['SOMETHING_NEW', 'client_cert_invalid'],
  ])('fail/a chain the handshake refused with %s → %s, the leaf alone read', (verdict, reason) => {
    const { req, reads } = requestWith(Buffer.from(svid.leaf.rawData), verdict);
    expect(outcome(() => authenticatePeer(req, trust(), new Date(), 'renewal'))).toEqual({
      code: 'MESHAUTH_ERR_CA_UNAUTHENTICATED',
      reason,
    });
    expect(reads()).toBe(1);
  });

  it('fail/a verified leaf past its NotAfter by the CA clock → client_cert_expired (the SVID rules run on the leaf)', () => {
    const { req } = requestWith(Buffer.from(svid.leaf.rawData));
    const later = new Date(svid.leaf.notAfter.getTime() + 60_000);
    expect(outcome(() => authenticatePeer(req, trust(), later, 'renewal'))).toEqual({
      code: 'MESHAUTH_ERR_CA_UNAUTHENTICATED',
      reason: 'client_cert_expired',
    });
  });

  it('fail/a verified leaf of another trust domain → refused by the leaf rules', async () => {
    const other = await TestCa.create('other.example');
    const stranger = await other.issue();
    const { req } = requestWith(Buffer.from(stranger.leaf.rawData));
    const refused = outcome(() => authenticatePeer(req, trust(), new Date(), 'renewal'));
    expect(refused.code).toBe('MESHAUTH_ERR_CA_UNAUTHENTICATED');
    expect(refused.reason).toMatch(/^client_cert_/);
  });

  it('fail/a leaf @peculiar/x509 cannot parse is a rejected client certificate, not another error', () => {
    const { req } = requestWith(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]));
    const refused = outcome(() => authenticatePeer(req, trust(), new Date(), 'renewal'));
    expect(refused.code).toBe('MESHAUTH_ERR_CA_UNAUTHENTICATED');
    expect(refused.reason).toMatch(/^client_cert_/);
  });
});
