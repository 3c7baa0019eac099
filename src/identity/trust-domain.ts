// TrustDomain: a validated SPIFFE trust domain name. Pure; the only way in is parse().
import { MeshauthError } from '../errors/index.js';

const TRUST_DOMAIN_CHAR = /^[a-z0-9._-]+$/;
const MAX_TRUST_DOMAIN_BYTES = 255;
const SCHEME = 'spiffe://';

export class TrustDomain {
  readonly #name: string;

  private constructor(name: string) {
    this.#name = name;
  }

  /** Accepts `example.org` or `spiffe://example.org` (no path). */
  static parse(input: string): TrustDomain {
    const name = input.startsWith(SCHEME) ? input.slice(SCHEME.length) : input;
    if (name.length === 0) {
      throw invalid(input, 'missing', 'trust domain is missing');
    }
    if (name.includes('/')) {
      throw invalid(input, 'has_path', 'a trust domain has no path');
    }
    if (!TRUST_DOMAIN_CHAR.test(name)) {
      throw invalid(
        input,
        'bad_char',
        'trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores',
      );
    }
    if (Buffer.byteLength(name) > MAX_TRUST_DOMAIN_BYTES) {
      throw invalid(input, 'too_long', `trust domain is longer than ${MAX_TRUST_DOMAIN_BYTES} bytes`);
    }
    return new TrustDomain(name);
  }

  get name(): string {
    return this.#name;
  }

  /** `spiffe://<name>`: the trust domain's own ID, used for signing certificates and bundles. */
  get idString(): string {
    return `${SCHEME}${this.#name}`;
  }

  equals(other: TrustDomain): boolean {
    return this.#name === other.#name;
  }

  toString(): string {
    return this.#name;
  }

  toJSON(): string {
    return this.#name;
  }
}

function invalid(input: string, reason: string, why: string): MeshauthError {
  return new MeshauthError(
    'MESHAUTH_ERR_TRUST_DOMAIN_INVALID',
    `invalid trust domain ${JSON.stringify(input)}: ${why}`,
    {
      reason,
    },
  );
}
