// verifyCsrPem: exactly one PKCS#10 block and nothing else, a supported key, RSA only with e = 65537.
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { MeshauthError } from '../../../src/errors/index.js';
import { createCsrPem, generateKeyPair, newKeyWithCsr, toPem, verifyCsrPem, x509 } from '../../../src/pki/index.js';
import {
  berCsrWithAttributes,
  csrRefusalReason,
  emptyAttributes,
  p256CsrSignedWithSha1,
  rsaCsrFromPrimes,
  rsaCsrWithExponent,
  rsaPrimes,
  withDerTrailer,
} from '../../helpers/csr-variants.js';
import { oid, tlv } from '../../helpers/der-writer.js';

const reasonOf = csrRefusalReason;

describe('verifyCsrPem', () => {
  it.each([
    ['ok/P-256', async () => createCsrPem(await generateKeyPair('p256'))],
    ['ok/Ed25519', async () => createCsrPem(await generateKeyPair('ed25519'))],
    ['ok/RSA-2048 e=65537', () => rsaCsrWithExponent(65537)],
    [
      'ok/RSA-2048 of two random primes, written as the weak keys below are',
      () => rsaCsrFromPrimes(...rsaPrimes('sound')),
    ],
    ['ok/surrounding whitespace and CRLF', async () => `\r\n  ${await createCsrPem(await generateKeyPair())}\r\n\n`],
  ])('%s', async (_name, make) => {
    expect(await reasonOf(await make())).toBeUndefined();
  });

  it.each([
    ['fail/RSA-2048 e=3', () => rsaCsrWithExponent(3), 'rsa_exponent'],
    ['fail/RSA-2048 e=17', () => rsaCsrWithExponent(17), 'rsa_exponent'],
    ['fail/RSA-2048 with the prime factor 739', () => rsaCsrFromPrimes(...rsaPrimes('small_factor')), 'rsa_weak_key'],
    ['fail/RSA-2048 of two neighbouring primes', () => rsaCsrFromPrimes(...rsaPrimes('close_primes')), 'rsa_weak_key'],
    ['fail/proof of possession signed with SHA-1', () => p256CsrSignedWithSha1(), 'weak_signature'],
    [
      'fail/text after the PEM block',
      async () => `${await createCsrPem(await generateKeyPair())}garbage`,
      'trailing_data',
    ],
    [
      'fail/a line after the END marker',
      async () => `${await createCsrPem(await generateKeyPair())}\nX-Extra: 1\n`,
      'trailing_data',
    ],
    [
      'fail/text before the PEM block',
      async () => `hello\n${await createCsrPem(await generateKeyPair())}`,
      'trailing_data',
    ],
    [
      'fail/bytes appended to the DER inside the block',
      async () => withDerTrailer(await createCsrPem(await generateKeyPair()), Buffer.from([0x05, 0x00])),
      'trailing_data',
    ],
    [
      'fail/two blocks',
      async () => `${await createCsrPem(await generateKeyPair())}${await createCsrPem(await generateKeyPair())}`,
      'pem',
    ],
  ])('%s', async (_name, make, reason) => {
    expect(await reasonOf(await make())).toBe(reason);
  });

  // The native path (strict DER, common algorithms) and the @peculiar/x509 path must agree on every verdict.
  const derOf = (pem: string) => Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
  const rePem = (der: Buffer) => toPem('CERTIFICATE REQUEST', der);
  /** Replaces the first occurrence of `from` (ASCII) in the DER with `to` (same length): a change after signing. */
  const tamper = (pem: string, from: string, to: string) => {
    const der = derOf(pem);
    const at = der.indexOf(Buffer.from(from));
    Buffer.from(to).copy(der, at);
    return rePem(der);
  };
  const openssl = (args: string[], input?: string) =>
    execFileSync('openssl', args, { encoding: 'utf8', ...(input === undefined ? {} : { input }) });
  /** A CSR made by the openssl CLI from a key PEM (a file: `req -key` reads it more than once). */
  const opensslReq = (keyPem: string, args: string[]) => {
    const dir = mkdtempSync(join(tmpdir(), 'meshauth-csr-'));
    try {
      writeFileSync(join(dir, 'key.pem'), keyPem);
      return openssl(['req', '-new', '-key', join(dir, 'key.pem'), ...args]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const opensslCsr = (keyArgs: string[], digest: string[]) =>
    opensslReq(openssl(['genpkey', ...keyArgs]), ['-subj', '/O=meshauth/CN=workload', ...digest]);

  it.each([
    [
      'ok/openssl P-256 CSR (ecdsa-with-SHA256)',
      () => opensslCsr(['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], ['-sha256']),
    ],
    [
      'ok/openssl P-256 CSR (ecdsa-with-SHA384)',
      () => opensslCsr(['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], ['-sha384']),
    ],
    ['ok/openssl Ed25519 CSR', () => opensslCsr(['-algorithm', 'ED25519'], [])],
    [
      'ok/openssl RSA-2048 CSR (sha256WithRSAEncryption)',
      () => opensslCsr(['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'], ['-sha256']),
    ],
    [
      'ok/openssl RSA-2048 CSR (RSASSA-PSS, general path)',
      () =>
        opensslCsr(
          ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
          ['-sha256', '-sigopt', 'rsa_padding_mode:pss'],
        ),
    ],
  ])('%s', async (_name, make) => {
    const pem = make();
    const verified = await verifyCsrPem(pem);
    // The SPKI handed to the CA is the CSR's own, and the lazily parsed key is the same key.
    const theirs = new x509.Pkcs10CertificateRequest(pem).publicKey.rawData;
    expect(Buffer.from(verified.spki).equals(Buffer.from(theirs))).toBe(true);
    expect(Buffer.from(verified.publicKey.rawData).equals(Buffer.from(theirs))).toBe(true);
  });

  it.each([
    [
      'fail/subject changed after signing (P-256)',
      async () => tamper(await createCsrPem(await generateKeyPair()), 'meshauth', 'meshautx'),
      'signature',
    ],
    [
      'fail/subject changed after signing (Ed25519)',
      async () => tamper(await createCsrPem(await generateKeyPair('ed25519')), 'meshauth', 'meshautx'),
      'signature',
    ],
    [
      'fail/last signature byte flipped (P-256)',
      async () => {
        const der = derOf(await createCsrPem(await generateKeyPair()));
        der[der.length - 1] = (der[der.length - 1] as number) ^ 0x01;
        return rePem(der);
      },
      'signature',
    ],
    [
      'fail/signature algorithm changed to ecdsa-with-SHA384 after signing',
      async () => {
        const der = derOf(await createCsrPem(await generateKeyPair()));
        // ecdsa-with-SHA256 (06 08 2a8648ce3d040302) → a same-length OID the parser knows but the key cannot use.
        const oid = Buffer.from('06082a8648ce3d040302', 'hex');
        const at = der.lastIndexOf(oid);
        Buffer.from('06082a8648ce3d040303', 'hex').copy(der, at); // ecdsa-with-SHA384: same key type, wrong digest
        return rePem(der);
      },
      'signature',
    ],
    [
      'fail/BER indefinite length (general path names it)',
      async () => {
        const der = derOf(await createCsrPem(await generateKeyPair()));
        const body = der.subarray(der[1] === 0x81 ? 3 : 2);
        return rePem(Buffer.concat([Buffer.from([0x30, 0x80]), body, Buffer.from([0, 0])]));
      },
      undefined,
    ],
    [
      'fail/RSA key with e=3 via openssl',
      () => {
        const key = createPrivateKey(
          openssl([
            'genpkey',
            '-algorithm',
            'RSA',
            '-pkeyopt',
            'rsa_keygen_bits:2048',
            '-pkeyopt',
            'rsa_keygen_pubexp:3',
          ]),
        );
        return opensslReq(key.export({ type: 'pkcs8', format: 'pem' }) as string, ['-subj', '/O=meshauth', '-sha256']);
      },
      'rsa_exponent',
    ],
  ])('%s', async (_name, make, reason) => {
    const pem = await make();
    const native = await reasonOf(pem);
    if (reason !== undefined) expect(native).toBe(reason);
    else expect(native).toBeDefined();
  });

  /** A correctly self-signed P-256 request with the given info fields (the signature never is what refuses it). */
  const signedCsr = (fields: (spki: Buffer) => Buffer[], algorithm = '1.2.840.10045.4.3.2', params: Buffer[] = []) => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const info = tlv(0x30, fields(publicKey.export({ type: 'spki', format: 'der' })));
    const signature = sign('sha256', info, privateKey);
    return rePem(tlv(0x30, [info, tlv(0x30, [oid(algorithm), ...params]), tlv(0x03, [Buffer.from([0]), signature])]));
  };
  const VERSION = Buffer.from([2, 1, 0]);
  const EMPTY = Buffer.from([0x30, 0]);

  // Shapes the strict-DER path once accepted although @peculiar/x509 (and OpenSSL) refuse them, and inputs that
  // made the general path throw something other than MESHAUTH_ERR_CSR_INVALID.
  it.each([
    [
      'fail/an attribute that is an INTEGER, not an Attribute SEQUENCE',
      () => signedCsr((spki) => [VERSION, EMPTY, spki, tlv(0xa0, [Buffer.from([2, 1, 1])])]),
      'malformed',
    ],
    [
      'fail/an attribute whose values are not a SET',
      () =>
        signedCsr((spki) => [
          VERSION,
          EMPTY,
          spki,
          tlv(0xa0, [tlv(0x30, [oid('1.2.840.113549.1.9.7'), tlv(0x0c, Buffer.from('pw'))])]),
        ]),
      'malformed',
    ],
    [
      'fail/an attribute without a type OID',
      () =>
        signedCsr((spki) => [VERSION, EMPTY, spki, tlv(0xa0, [tlv(0x30, [Buffer.from([2, 1, 1]), tlv(0x31, [])])])]),
      'malformed',
    ],
    [
      'fail/an SPKI @peculiar/x509 cannot read, on the general path (RSASSA-PSS OID), is CSR_INVALID, not a raw Error',
      () =>
        signedCsr(
          (spki) => {
            // The namedCurve OID's tag turned into NULL's (05 08 ...): the request parses, its key does not.
            const broken = Buffer.from(spki);
            broken[broken.indexOf(Buffer.from('06082a8648ce3d030107', 'hex'))] = 0x05;
            return [VERSION, EMPTY, broken, tlv(0xa0, [])];
          },
          '1.2.840.113549.1.1.10',
          [Buffer.from([5, 0])],
        ),
      'malformed',
    ],
    [
      'fail/base64 after the padding inside the block (Buffer would stop reading at the first "=")',
      async () => {
        const pem = await createCsrPem(await generateKeyPair());
        const body = derOf(pem).toString('base64');
        const smuggled = `${body}${body.endsWith('=') ? '' : '='}QUJD`;
        return `-----BEGIN CERTIFICATE REQUEST-----\n${smuggled.match(/.{1,64}/g)?.join('\n')}\n-----END CERTIFICATE REQUEST-----\n`;
      },
      'pem',
    ],
  ])('%s', async (_name, make, reason) => {
    expect(await reasonOf(await make())).toBe(reason);
  });

  // P-256 and Ed25519 keys of the usual layout are imported from their key bytes (JWK), not through OpenSSL's DER
  // decoder: the same checks must hold, and the same key must come out.
  it('fail/a P-256 point off the curve, in the usual SPKI layout → key_type', async () => {
    const offCurve = (spki: Buffer) => {
      const changed = Buffer.from(spki);
      changed[90] = (changed[90] as number) ^ 1; // the last byte of y
      return changed;
    };
    expect(await reasonOf(signedCsr((spki) => [VERSION, EMPTY, offCurve(spki)]))).toBe('key_type');
  });

  it.each(['p256', 'ed25519'] as const)('ok/%s: the key read from the SPKI bytes is the signing key', async (type) => {
    const made = await newKeyWithCsr(type);
    const verified = await verifyCsrPem(made.csrPem);
    const imported = createPublicKey({ key: Buffer.from(verified.spki), format: 'der', type: 'spki' });
    expect(imported.equals(made.publicKey)).toBe(true);
    // A signature by another key of the same type does not verify against it.
    const other = await newKeyWithCsr(type);
    const derOther = derOf(other.csrPem);
    const derMade = derOf(made.csrPem);
    const spkiAt = derMade.indexOf(Buffer.from(verified.spki));
    const swapped = Buffer.from(derOther);
    Buffer.from(verified.spki).copy(swapped, derOther.indexOf(Buffer.from((await verifyCsrPem(other.csrPem)).spki)));
    expect(spkiAt).toBeGreaterThan(0);
    expect(await reasonOf(rePem(swapped))).toBe('signature');
  });

  it('ok/a request with a well-formed extensionRequest attribute and an empty subject takes the fast path', async () => {
    const san = new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://example.org/a' }]);
    const request = tlv(0x30, [oid('1.2.840.113549.1.9.14'), tlv(0x31, [tlv(0x30, [new Uint8Array(san.rawData)])])]);
    const verified = await verifyCsrPem(signedCsr((spki) => [VERSION, EMPTY, spki, tlv(0xa0, [request])]));
    expect(Object.getOwnPropertyDescriptor(verified, 'publicKey')?.get).toBeDefined();
    expect(verified.keyType).toBe('p256');
  });

  // Checked before the request's credential: what a CSR may make the CA parse is bounded by its element count, not
  // only its size (16 KiB of tiny BER elements cost @peculiar/x509 30–100 ms).
  it.each([
    ['BER (general path)', () => berCsrWithAttributes(emptyAttributes(1000))],
    ['strict DER', () => signedCsr((spki) => [VERSION, EMPTY, spki, emptyAttributes(1000)])],
    [
      'in an extension value',
      () => {
        const names = tlv(
          0x30,
          Array.from({ length: 600 }, (_, i) => tlv(0x82, [Buffer.from(`h${i}.example`)])),
        );
        const extension = tlv(0x30, [oid('2.5.29.17'), tlv(0x04, [names])]);
        const request = tlv(0x30, [oid('1.2.840.113549.1.9.14'), tlv(0x31, [tlv(0x30, [extension])])]);
        return berCsrWithAttributes(tlv(0xa0, [request]));
      },
    ],
  ])('fail/a thousand tiny ASN.1 elements, %s → too_large', async (_name, make) => {
    const pem = make();
    expect(Buffer.byteLength(pem)).toBeLessThan(16 * 1024);
    expect(await reasonOf(pem)).toBe('too_large');
  });

  it('ok/a BER request with a hundred attributes is still read by the general path', async () => {
    expect(await reasonOf(berCsrWithAttributes(emptyAttributes(100)))).toBeUndefined();
  });

  it('ok/an openssl request with a full subject and 40 DNS names', () => {
    const names = Array.from({ length: 40 }, (_, i) => `DNS:host${i}.shop.svc.cluster.local`).join(',');
    const pem = execFileSync(
      'openssl',
      [
        'req',
        '-new',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        '/dev/null',
        '-sha256',
        '-subj',
        '/C=US/ST=California/L=San Francisco/O=Example/OU=Platform/CN=web.shop/emailAddress=p@example.com',
        '-addext',
        `subjectAltName=${names},URI:spiffe://example.org/ns/a/sa/w`,
        '-addext',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        '-addext',
        'extendedKeyUsage=serverAuth,clientAuth',
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    );
    return expect(reasonOf(pem)).resolves.toBeUndefined();
  });

  it('fail/hundreds of BEGIN lines and no END are counted, not searched (quadratic) → pem', async () => {
    const pem = '-----BEGIN CERTIFICATE REQUEST-----\n'.repeat(400);
    const error = (await verifyCsrPem(pem).catch((e: unknown) => e)) as MeshauthError;
    expect(error.reason).toBe('pem');
    expect(error.message).toContain('found 400');
  });
});

describe('newKeyWithCsr (the agent writes its request as DER)', () => {
  it.each(['p256', 'ed25519', 'rsa2048'] as const)(
    'ok/%s: OpenSSL verifies it, the CA verifies it natively, it carries exactly the new key',
    async (type) => {
      const made = await newKeyWithCsr(type);
      const dir = mkdtempSync(join(tmpdir(), 'meshauth-csr-'));
      try {
        writeFileSync(join(dir, 'req.pem'), made.csrPem);
        const out = execFileSync('openssl', ['req', '-in', join(dir, 'req.pem'), '-verify', '-noout', '-subject'], {
          stdio: ['ignore', 'pipe', 'pipe'],
        }).toString();
        expect(out).toMatch(/O ?= ?meshauth/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      const verified = await verifyCsrPem(made.csrPem);
      expect(verified.keyType).toBe(type);
      expect(Object.getOwnPropertyDescriptor(verified, 'publicKey')?.get).toBeDefined();
      expect(Buffer.from(verified.spki).equals(made.publicKey.export({ type: 'spki', format: 'der' }))).toBe(true);
      // The SPKI the agent carries to recognise its certificate is the one its CSR holds.
      expect(made.spkiDer.equals(Buffer.from(verified.spki))).toBe(true);
      // The private key kept for TLS is the one that signed the request.
      expect(createPublicKey(createPrivateKey(made.privateKeyPem)).equals(made.publicKey)).toBe(true);
      const parsed = new x509.Pkcs10CertificateRequest(made.csrPem);
      expect(parsed.subject).toBe('O=meshauth');
      expect(await parsed.verify()).toBe(true);
    },
  );

  it('ok/createCsrPem (WebCrypto keys, `meshauth cert`) writes the same shape', async () => {
    const keys = await generateKeyPair('p256');
    const pem = await createCsrPem(keys);
    const parsed = new x509.Pkcs10CertificateRequest(pem);
    expect(await parsed.verify()).toBe(true);
    expect((await verifyCsrPem(pem)).keyType).toBe('p256');
  });
});
