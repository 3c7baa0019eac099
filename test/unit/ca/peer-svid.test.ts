// authenticatePeer: every failure to read or validate the client's chain is MESHAUTH_ERR_CA_UNAUTHENTICATED with a
// client_cert_* reason. The chain is handed over in the shape Node's TLSSocket#getPeerX509Certificate() returns
// (the handshake itself is covered by the CA integration tests).
import { X509Certificate } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { beforeAll, describe, expect, it } from 'vitest';
import { authenticatePeer } from '../../../src/ca/peer-svid.js';
import { MeshauthError } from '../../../src/errors/index.js';
import { TestCa, type TestSvid } from '../../helpers/test-ca.js';

let ca: TestCa;
let svid: TestSvid;

beforeAll(async () => {
  ca = await TestCa.create('example.org');
  svid = await ca.issue();
});

/**
 * A request whose socket reports `ders` as the chain the client sent, in the shape the CA reads it: the leaf from
 * getPeerX509Certificate(), the rest through its issuerCertificate links.
 */
function requestWithChain(ders: readonly Buffer[]): IncomingMessage {
  const [leafDer, ...issuerDers] = ders;
  let next: { raw: Buffer; issuerCertificate?: unknown } | undefined;
  for (const raw of [...issuerDers].reverse())
    next = { raw, ...(next === undefined ? {} : { issuerCertificate: next }) };
  // The leaf is a real certificate (the validator checks its key and signature) with the links above.
  const leaf =
    leafDer === undefined
      ? undefined
      : Object.create(new X509Certificate(leafDer), { issuerCertificate: { value: next } });
  // Like Node, the issuer links come with the first call only; later calls report the leaf alone.
  const bare = leafDer === undefined ? undefined : new X509Certificate(leafDer);
  let calls = 0;
  return {
    socket: { getPeerX509Certificate: () => (calls++ === 0 ? leaf : bare) },
  } as unknown as IncomingMessage;
}

function outcome(run: () => unknown): { id?: string; code?: string; reason?: string | undefined } {
  try {
    return { id: String(run()) };
  } catch (error) {
    expect(error).toBeInstanceOf(MeshauthError);
    return { code: (error as MeshauthError).code, reason: (error as MeshauthError).reason };
  }
}

describe('authenticatePeer', () => {
  it('ok/leaf and intermediate', () => {
    const req = requestWithChain([Buffer.from(svid.leaf.rawData), Buffer.from(ca.intermediate.rawData)]);
    expect(outcome(() => authenticatePeer(req, ca.bundle, new Date(), 'renewal'))).toEqual({ id: svid.id });
  });

  it('ok/a second request on the same connection is authenticated from the chain read for the first', () => {
    const req = requestWithChain([Buffer.from(svid.leaf.rawData), Buffer.from(ca.intermediate.rawData)]);
    expect(outcome(() => authenticatePeer(req, ca.bundle, new Date(), 'renewal'))).toEqual({ id: svid.id });
    expect(outcome(() => authenticatePeer(req, ca.bundle, new Date(), 'token request'))).toEqual({ id: svid.id });
  });

  it('fail/no client certificate', () => {
    expect(outcome(() => authenticatePeer(requestWithChain([]), ca.bundle, new Date(), 'renewal'))).toEqual({
      code: 'MESHAUTH_ERR_CA_UNAUTHENTICATED',
      reason: 'no_credential',
    });
  });

  it('fail/an intermediate @peculiar/x509 cannot parse is a rejected client certificate, not another error', () => {
    const req = requestWithChain([Buffer.from(svid.leaf.rawData), Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00])]);
    expect(outcome(() => authenticatePeer(req, ca.bundle, new Date(), 'renewal'))).toEqual({
      code: 'MESHAUTH_ERR_CA_UNAUTHENTICATED',
      reason: 'client_cert_malformed',
    });
  });
});
