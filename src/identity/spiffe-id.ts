// SpiffeId: a validated SPIFFE ID. Pure. Parsing is strict, like go-spiffe's spiffeid.FromString:
// lowercase scheme and trust domain, no port/userinfo/query/fragment/percent-encoding, no empty or dot segments,
// no trailing slash, at most 2048 bytes. Compare IDs with equals(), never by substring.
import { MeshauthError } from '../errors/index.js';
import { TrustDomain } from './trust-domain.js';

const SCHEME = 'spiffe://';
const MAX_ID_BYTES = 2048;
const PATH_SEGMENT_CHAR = /^[A-Za-z0-9._-]+$/;

export type SpiffeIdReason =
  | 'empty'
  | 'wrong_scheme'
  | 'missing_trust_domain'
  | 'bad_trust_domain_char'
  | 'trust_domain_too_long'
  | 'empty_segment'
  | 'dot_segment'
  | 'trailing_slash'
  | 'bad_path_char'
  | 'too_long';

export interface KubernetesIdentity {
  readonly namespace: string;
  readonly serviceAccount: string;
}

export class SpiffeId {
  readonly #trustDomain: TrustDomain;
  readonly #path: string;
  readonly #string: string;

  private constructor(trustDomain: TrustDomain, path: string) {
    this.#trustDomain = trustDomain;
    this.#path = path;
    this.#string = `${SCHEME}${trustDomain.name}${path}`;
  }

  static parse(input: string): SpiffeId {
    if (input.length === 0) {
      throw invalid(input, 'empty', 'cannot be empty');
    }
    if (Buffer.byteLength(input) > MAX_ID_BYTES) {
      throw invalid(input, 'too_long', `longer than ${MAX_ID_BYTES} bytes`);
    }
    if (!input.startsWith(SCHEME)) {
      throw invalid(input, 'wrong_scheme', 'scheme is missing or invalid (must be lowercase "spiffe://")');
    }
    const rest = input.slice(SCHEME.length);
    const slash = rest.indexOf('/');
    const domain = slash === -1 ? rest : rest.slice(0, slash);
    const path = slash === -1 ? '' : rest.slice(slash);
    let trustDomain: TrustDomain;
    try {
      trustDomain = TrustDomain.parse(domain);
    } catch (error) {
      const reason = domain.length === 0 ? 'missing_trust_domain' : trustDomainReason(error);
      const why =
        domain.length === 0
          ? 'trust domain is missing'
          : reason === 'trust_domain_too_long'
            ? 'trust domain is longer than 255 bytes'
            : 'trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores (no port, userinfo, query or fragment)';
      throw invalid(input, reason, why);
    }
    validatePath(input, path);
    return new SpiffeId(trustDomain, path);
  }

  /** Builds `spiffe://<td>/<seg>/<seg>…`, validating each segment. */
  static fromSegments(trustDomain: TrustDomain, ...segments: string[]): SpiffeId {
    return SpiffeId.parse(`${trustDomain.idString}${segments.map((s) => `/${s}`).join('')}`);
  }

  /** The Kubernetes form `spiffe://<td>/ns/<namespace>/sa/<service-account>`. */
  static forKubernetes(trustDomain: TrustDomain, namespace: string, serviceAccount: string): SpiffeId {
    return SpiffeId.fromSegments(trustDomain, 'ns', namespace, 'sa', serviceAccount);
  }

  /** Returns the ID or undefined; for places where an invalid ID is an expected outcome, not an error. */
  static tryParse(input: string): SpiffeId | undefined {
    try {
      return SpiffeId.parse(input);
    } catch {
      return undefined;
    }
  }

  get trustDomain(): TrustDomain {
    return this.#trustDomain;
  }

  /** The path, starting with `/`, or '' for the trust domain's own ID. */
  get path(): string {
    return this.#path;
  }

  get segments(): readonly string[] {
    return this.#path === '' ? [] : this.#path.slice(1).split('/');
  }

  /** True for `spiffe://td` with no path: such an ID names a trust domain, never a workload. */
  get isTrustDomainId(): boolean {
    return this.#path === '';
  }

  /** Namespace and service account when the ID has exactly the Kubernetes form. */
  get kubernetes(): KubernetesIdentity | undefined {
    const s = this.segments;
    if (s.length === 4 && s[0] === 'ns' && s[2] === 'sa' && s[1] !== undefined && s[3] !== undefined) {
      return { namespace: s[1], serviceAccount: s[3] };
    }
    return undefined;
  }

  memberOf(trustDomain: TrustDomain): boolean {
    return this.#trustDomain.equals(trustDomain);
  }

  /** A workload of `trustDomain`: a member with a path (the trust domain's own ID names no workload). */
  isWorkloadOf(trustDomain: TrustDomain): boolean {
    return !this.isTrustDomainId && this.memberOf(trustDomain);
  }

  equals(other: SpiffeId): boolean {
    return this.#string === other.#string;
  }

  toString(): string {
    return this.#string;
  }

  toJSON(): string {
    return this.#string;
  }
}

function validatePath(input: string, path: string): void {
  if (path === '') return;
  if (path === '/') {
    throw invalid(input, 'trailing_slash', 'path cannot have a trailing slash');
  }
  const segments = path.slice(1).split('/');
  segments.forEach((segment, index) => {
    if (segment === '') {
      if (index === segments.length - 1) {
        throw invalid(input, 'trailing_slash', 'path cannot have a trailing slash');
      }
      throw invalid(input, 'empty_segment', 'path cannot contain empty segments');
    }
    if (segment === '.' || segment === '..') {
      throw invalid(input, 'dot_segment', 'path cannot contain dot segments');
    }
    if (!PATH_SEGMENT_CHAR.test(segment)) {
      throw invalid(
        input,
        'bad_path_char',
        'path segment characters are limited to letters, numbers, dots, dashes, and underscores (no percent-encoding, query or fragment)',
      );
    }
  });
}

function trustDomainReason(error: unknown): SpiffeIdReason {
  return error instanceof MeshauthError && error.reason === 'too_long'
    ? 'trust_domain_too_long'
    : 'bad_trust_domain_char';
}

function invalid(input: string, reason: SpiffeIdReason, why: string): MeshauthError {
  const shown = input.length > 120 ? `${input.slice(0, 120)}…` : input;
  return new MeshauthError('MESHAUTH_ERR_SPIFFE_ID_INVALID', `invalid SPIFFE ID ${JSON.stringify(shown)}: ${why}`, {
    reason,
  });
}
