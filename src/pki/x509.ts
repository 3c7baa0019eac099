// The one import point for @peculiar/x509. Version 2 needs a Reflect polyfill loaded first (its tsyringe container
// throws without one), and it must use Node's WebCrypto; every pki module imports x509 from here, never directly.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { x509 };
export const subtle: SubtleCrypto = webcrypto.subtle as unknown as SubtleCrypto;
