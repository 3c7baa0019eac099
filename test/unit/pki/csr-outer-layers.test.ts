// verifyCsrPem's general path (BER requests, read by @peculiar/x509) against OpenSSL on the outer layers of a
// request: the parser reads the fields it knows and skips the rest, so an element after the signature inside the
// outer SEQUENCE (unsigned), a field after the attributes, a padded version INTEGER and a signature BIT STRING with
// unused bits were accepted, and the CA issued an SVID for such a request, which `openssl req -verify` refuses.
// Every request here is signed by its own key, so the signature is never what refuses it.
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { toPem } from '../../../src/pki/index.js';
import { csrRefusalReason } from '../../helpers/csr-variants.js';
import { EncodingNoise, type HeaderForm, tlv } from '../../helpers/der-writer.js';
import { fuzzParams, fuzzTimeout } from '../fuzz/fuzz-settings.js';

const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const SPKI = key.publicKey.export({ type: 'spki', format: 'der' });
const VERSION_0 = Buffer.from('020100', 'hex');
const SUBJECT = Buffer.from('30133111300f060355040a13086d65736861757468', 'hex');
const NO_ATTRIBUTES = Buffer.from('a000', 'hex');
const ECDSA_SHA256 = Buffer.from('300a06082a8648ce3d040302', 'hex');
const NULL = Buffer.from('0500', 'hex');

interface Shape {
  readonly version?: Buffer;
  /** Fields written after the attributes, inside CertificationRequestInfo. */
  readonly infoExtra?: readonly Buffer[];
  /** Elements written after the signature, inside the outer SEQUENCE. */
  readonly outerExtra?: readonly Buffer[];
  readonly unusedBits?: number;
  /** The header form of CertificationRequestInfo (indefinite or a long length make the request BER). */
  readonly infoForm?: HeaderForm;
  readonly attributes?: boolean;
}

/** A P-256 request of the shape, its CertificationRequestInfo signed as written. */
function request(shape: Shape = {}): Buffer {
  const fields = [shape.version ?? VERSION_0, SUBJECT, SPKI];
  if (shape.attributes !== false) fields.push(NO_ATTRIBUTES);
  const info = tlv(0x30, [...fields, ...(shape.infoExtra ?? [])], new EncodingNoise([shape.infoForm ?? 'minimal']));
  const signature = sign('sha256', info, key.privateKey);
  const bits = tlv(0x03, [Buffer.of(shape.unusedBits ?? 0), signature]);
  return tlv(0x30, [info, ECDSA_SHA256, bits, ...(shape.outerExtra ?? [])]);
}

const reasonOf = (der: Buffer) => csrRefusalReason(toPem('CERTIFICATE REQUEST', der));

const dir = mkdtempSync(join(tmpdir(), 'meshauth-csr-outer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Whether `openssl req -verify` accepts the request. */
function opensslAccepts(der: Buffer, name: string): boolean {
  const file = join(dir, `${name.replace(/[^a-z0-9]+/gi, '-')}.der`);
  writeFileSync(file, der);
  const result = spawnSync('openssl', ['req', '-inform', 'DER', '-in', file, '-verify', '-noout'], {
    encoding: 'utf8',
  });
  if (result.error !== undefined) throw new Error(`openssl is required for this test: ${result.error.message}`);
  return result.status === 0;
}

describe('verifyCsrPem: the outer layers of a BER request are read as OpenSSL reads them', () => {
  it.each<[string, Shape, string | undefined]>([
    ['ok/indefinite CertificationRequestInfo', { infoForm: 'indefinite' }, undefined],
    ['ok/long-form length of CertificationRequestInfo', { infoForm: 'long-length' }, undefined],
    [
      'ok/indefinite CertificationRequestInfo without attributes',
      { infoForm: 'indefinite', attributes: false },
      undefined,
    ],
    ['fail/an element after the signature', { outerExtra: [NULL] }, 'trailing_data'],
    ['fail/an element after the signature, BER info', { infoForm: 'indefinite', outerExtra: [NULL] }, 'trailing_data'],
    ['fail/a field after the attributes', { infoExtra: [NULL] }, 'malformed'],
    ['fail/a field after the attributes, indefinite info', { infoForm: 'indefinite', infoExtra: [NULL] }, 'malformed'],
    ['fail/version 0 with a redundant 00 octet', { version: Buffer.from('02020000', 'hex') }, 'malformed'],
    ['fail/version -128 with a redundant FF octet', { version: Buffer.from('0202ff80', 'hex') }, 'malformed'],
    ['fail/signature BIT STRING with 3 unused bits', { unusedBits: 3 }, 'malformed'],
  ])('%s (and OpenSSL agrees)', async (name, shape, reason) => {
    const der = request(shape);
    expect(await reasonOf(der)).toBe(reason);
    expect(opensslAccepts(der, name)).toBe(reason === undefined);
  });

  const RUNS = 60;
  it(
    'property: any element after the signature or after the attributes is refused, whatever the header forms',
    async () => {
      const form = fc.constantFrom<HeaderForm>('minimal', 'long-length', 'indefinite');
      const element = fc
        .tuple(fc.constantFrom(0x05, 0x04, 0x0c, 0x30, 0x31, 0xa0, 0xa1, 0x80), fc.uint8Array({ maxLength: 40 }))
        .map(([tag, content]) => tlv(tag, (tag & 0x20) === 0 ? Buffer.from(content) : []));
      await fc.assert(
        fc.asyncProperty(
          form,
          fc.array(element, { maxLength: 3 }),
          fc.array(element, { maxLength: 3 }),
          async (infoForm, infoExtra, outerExtra) => {
            fc.pre(infoExtra.length + outerExtra.length > 0);
            const reason = await reasonOf(request({ infoForm, infoExtra, outerExtra }));
            expect(reason === 'trailing_data' || reason === 'malformed').toBe(true);
          },
        ),
        fuzzParams(RUNS),
      );
    },
    fuzzTimeout(RUNS, 5),
  );
});
