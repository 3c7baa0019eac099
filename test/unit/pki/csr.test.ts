// verifyCsrPem (SPEC §3): exactly one PKCS#10 block and nothing else, a supported key, RSA only with e = 65537.
import { describe, expect, it } from 'vitest';
import type { MeshauthError } from '../../../src/errors/index.js';
import { createCsrPem, generateKeyPair, verifyCsrPem } from '../../../src/pki/index.js';
import { rsaCsrWithExponent, withDerTrailer } from '../../helpers/csr-variants.js';

async function reasonOf(pem: string): Promise<string | undefined> {
  const error = (await verifyCsrPem(pem).then(
    () => undefined,
    (e: unknown) => e,
  )) as MeshauthError | undefined;
  if (error === undefined) return undefined;
  expect(error.code).toBe('MESHAUTH_ERR_CSR_INVALID');
  return error.reason;
}

describe('verifyCsrPem', () => {
  it.each([
    ['ok/P-256', async () => createCsrPem(await generateKeyPair('p256'))],
    ['ok/Ed25519', async () => createCsrPem(await generateKeyPair('ed25519'))],
    ['ok/RSA-2048 e=65537', () => rsaCsrWithExponent(65537)],
    ['ok/surrounding whitespace and CRLF', async () => `\r\n  ${await createCsrPem(await generateKeyPair())}\r\n\n`],
  ])('%s', async (_name, make) => {
    expect(await reasonOf(await make())).toBeUndefined();
  });

  it.each([
    ['fail/RSA-2048 e=3', () => rsaCsrWithExponent(3), 'rsa_exponent'],
    ['fail/RSA-2048 e=17', () => rsaCsrWithExponent(17), 'rsa_exponent'],
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
});
