// authenticatePeer: every failure to read or validate the client's chain is MESHAUTH_ERR_CA_UNAUTHENTICATED with a
// client_cert_* reason. The chain is handed over in the shape Node's TLSSocket#getPeerCertificate(true) returns
// (the handshake itself is covered by the CA integration tests).
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
 * A request whose socket reports `ders` as the chain the client sent, in the shape the CA reads it: each certificate
 * of getPeerCertificate(true) with its DER and a link to the next. `reads` counts the socket's calls.
 */
function requestWithChain(
  ders: readonly Buffer[],
  lastSelfSigned = false,
): { req: IncomingMessage; reads: () => number } {
  let chain: { raw: Buffer; issuerCertificate?: unknown } | undefined;
  for (const raw of [...ders].reverse()) chain = { raw, ...(chain === undefined ? {} : { issuerCertificate: chain }) };
  // Node links a self-signed certificate that ends the chain to itself.
  let last = chain;
  while (last?.issuerCertificate !== undefined) last = last.issuerCertificate as typeof chain;
  if (lastSelfSigned && last !== undefined) last.issuerCertificate = last;
  let calls = 0;
  const socket = {
    getPeerCertificate: (detailed?: boolean) => {
      calls++;
      // Node's answer for a connection without a client certificate is an empty object.
      return detailed === true ? (chain ?? {}) : {};
    },
  };
  return { req: { socket } as unknown as IncomingMessage, reads: () => calls };
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
    const { req } = requestWithChain([Buffer.from(svid.leaf.rawData), Buffer.from(ca.intermediate.rawData)]);
    expect(outcome(() => authenticatePeer(req, ca.bundle, new Date(), 'renewal'))).toEqual({ id: svid.id });
  });

  it('ok/a second request on the same connection is authenticated from the chain read for the first', () => {
    const { req, reads } = requestWithChain([Buffer.from(svid.leaf.rawData), Buffer.from(ca.intermediate.rawData)]);
    expect(outcome(() => authenticatePeer(req, ca.bundle, new Date(), 'renewal'))).toEqual({ id: svid.id });
    expect(outcome(() => authenticatePeer(req, ca.bundle, new Date(), 'token request'))).toEqual({ id: svid.id });
    expect(reads()).toBe(1);
  });

  it('ok/a client that also sent the root: the chain ends there', () => {
    const { req } = requestWithChain(
      [svid.leaf, ca.intermediate, ca.root].map((c) => Buffer.from(c.rawData)),
      true,
    );
    expect(outcome(() => authenticatePeer(req, ca.bundle, new Date(), 'renewal'))).toEqual({ id: svid.id });
  });

  it('fail/no client certificate', () => {
    const { req } = requestWithChain([]);
    expect(outcome(() => authenticatePeer(req, ca.bundle, new Date(), 'renewal'))).toEqual({
      code: 'MESHAUTH_ERR_CA_UNAUTHENTICATED',
      reason: 'no_credential',
    });
  });

  it('fail/an intermediate @peculiar/x509 cannot parse is a rejected client certificate, not another error', () => {
    const { req } = requestWithChain([Buffer.from(svid.leaf.rawData), Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00])]);
    expect(outcome(() => authenticatePeer(req, ca.bundle, new Date(), 'renewal'))).toEqual({
      code: 'MESHAUTH_ERR_CA_UNAUTHENTICATED',
      reason: 'client_cert_malformed',
    });
  });
});
