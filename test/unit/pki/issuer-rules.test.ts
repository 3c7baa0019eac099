// The rules validateX509Svid applies to the CA certificates above the leaf. That validator is the only chain
// check on the CA's renewal and token endpoints (their TLS server sets no `ca` and does not reject), and the one for
// passport x5c chains and CA answers, so it must refuse what OpenSSL's verifier refuses in a handshake (RFC 5280)
// and what X509-SVID §3.2 forbids, and accept what both accept.
import { AsnConvert } from '@peculiar/asn1-schema';
import { GeneralName, GeneralSubtree, GeneralSubtrees, NameConstraints } from '@peculiar/asn1-x509';
import { beforeAll, describe, expect, it } from 'vitest';
import { x509 } from '../../../src/pki/index.js';
import {
  bothEntryPoints,
  createTestRoot,
  type IssuerCa,
  intermediateUnder,
  leafUnder,
  type TestRoot,
} from '../../helpers/issuer-chain.js';

let root: TestRoot;
beforeAll(async () => {
  root = await createTestRoot();
});

/** An intermediate under the root: CA:TRUE pathLen 0, keyCertSign, plus `extra`. */
const intermediate = (extra: x509.Extension[]): Promise<IssuerCa> => intermediateUnder(root, extra);

function nameConstraints(permitted: GeneralName[], excluded: GeneralName[] = []): x509.Extension {
  const subtrees = (names: GeneralName[]) => new GeneralSubtrees(names.map((base) => new GeneralSubtree({ base })));
  const value = new NameConstraints({
    ...(permitted.length > 0 ? { permittedSubtrees: subtrees(permitted) } : {}),
    ...(excluded.length > 0 ? { excludedSubtrees: subtrees(excluded) } : {}),
  });
  return new x509.Extension('2.5.29.30', true, AsnConvert.serialize(value));
}

const uri = (host: string) => new GeneralName({ uniformResourceIdentifier: host });
const dns = (host: string) => new GeneralName({ dNSName: host });

/** The reason both validator entry points give (the parsed chain and the DER leaf), or 'ok'. */
async function outcomes(issuer: IssuerCa, id?: string): Promise<[string, string]> {
  return bothEntryPoints(await leafUnder(issuer, id), [issuer.cert], root.bundle);
}

describe('issuer certificates: what must be refused', () => {
  it('fail/an intermediate with a critical extension nobody processes (RFC 5280 §4.2; OpenSSL: unhandled critical extension)', async () => {
    const ca = await intermediate([new x509.Extension('1.3.6.1.4.1.99999.1', true, new Uint8Array([0x05, 0x00]))]);
    expect(await outcomes(ca)).toEqual(['unknown_critical_extension', 'unknown_critical_extension']);
  });

  it('fail/an intermediate whose SPIFFE ID has a path (X509-SVID §3.2: a signing certificate’s ID has none)', async () => {
    const ca = await intermediate([
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://example.org/ns/x/sa/y' }], false),
    ]);
    expect(await outcomes(ca)).toEqual(['bad_intermediate', 'bad_intermediate']);
  });

  it('fail/an intermediate whose extended key usage allows serverAuth only (OpenSSL refuses it for a client chain)', async () => {
    const ca = await intermediate([new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false)]);
    expect(await outcomes(ca)).toEqual(['issuer_eku', 'issuer_eku']);
  });

  it('fail/an excluded URI subtree naming the trust domain (RFC 5280 §4.2.1.10)', async () => {
    const ca = await intermediate([nameConstraints([uri('.org'), uri('example.org')], [uri('example.org')])]);
    expect(await outcomes(ca)).toEqual(['name_constraints', 'name_constraints']);
  });
});

describe('issuer certificates: what must be accepted (OpenSSL accepts them in a handshake)', () => {
  it('ok/an intermediate whose own SPIFFE ID is the trust domain (what meshauth issues)', async () => {
    const ca = await intermediate([
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://example.org' }], false),
    ]);
    expect(await outcomes(ca)).toEqual(['ok', 'ok']);
  });

  it('ok/an intermediate whose extended key usage allows both serverAuth and clientAuth', async () => {
    const ca = await intermediate([
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
    ]);
    expect(await outcomes(ca)).toEqual(['ok', 'ok']);
  });

  it('ok/name constraints with DNS subtrees only leave URIs unconstrained', async () => {
    const ca = await intermediate([nameConstraints([dns('svc.example.org')])]);
    expect(await outcomes(ca)).toEqual(['ok', 'ok']);
  });

  it('ok/a URI name constraint matches the host case-insensitively', async () => {
    const ca = await intermediate([nameConstraints([uri('EXAMPLE.ORG')])]);
    expect(await outcomes(ca)).toEqual(['ok', 'ok']);
  });

  it('fail/still: a URI constraint for another trust domain', async () => {
    const ca = await intermediate([nameConstraints([uri('other.org')])]);
    expect(await outcomes(ca)).toEqual(['name_constraints', 'name_constraints']);
  });
});
