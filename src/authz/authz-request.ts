// The input of a policy decision (the Policy Information Point's attributes). Types only.
// Everything the decision depends on is in here, time included, so decide() never reads a clock or does I/O.
import type { SpiffeId } from '../identity/index.js';

/**
 * Request headers by lower-case name; every value of a repeated header, in arrival order. A record may hold a
 * single string per name, as Node's IncomingHttpHeaders does, so the sidecar passes its headers without copying.
 */
export type AuthzHeaders =
  | ReadonlyMap<string, readonly string[]>
  | Readonly<Record<string, string | readonly string[] | undefined>>;

/** The verified end user (from a passport or a validated JWT); never raw, unverified claims. */
export interface AuthzUser {
  readonly sub?: string;
  readonly iss?: string;
  /** OAuth scopes: a space-separated string or an array. */
  readonly scope?: string | readonly string[];
  readonly groups?: string | readonly string[];
  readonly client_id?: string;
  readonly [claim: string]: unknown;
}

export interface AuthzRequest {
  /**
   * The authenticated mTLS peer; undefined for a request from the sidecar's `external` listener (an API client
   * authenticated by a bearer token only). Rules with `from` never match a request without a peer.
   */
  readonly peerId?: SpiffeId | undefined;
  /** Upper-case method, already checked with validateMethod(). */
  readonly method: string;
  /** Path already normalized with normalizePath() (no query). */
  readonly path: string;
  /** The Host / :authority as received; decide() lower-cases it and strips port and trailing dot. */
  readonly host: string;
  /** The port the request arrived on (inbound listener port). */
  readonly port: number;
  readonly headers: AuthzHeaders;
  /** The peer's address as the socket reports it (IPv4, IPv6, or IPv4-mapped IPv6). */
  readonly sourceIp: string;
  readonly user?: AuthzUser | undefined;
  /** SPIFFE IDs of the hops before the peer, first hop first (the passport's `act` chain). */
  readonly chain?: readonly string[] | undefined;
  /** The time the decision is made for (`when.time`). */
  readonly now: Date;
}

/** A request from the mesh: its mTLS peer is known (what `meshauth policy test` evaluates). */
export interface MeshAuthzRequest extends AuthzRequest {
  readonly peerId: SpiffeId;
}

/** All values of a header (lower-case name) or undefined when absent. Own properties only for records. */
export function headerValues(headers: AuthzHeaders, name: string): readonly string[] | undefined {
  if (headers instanceof Map) return headers.get(name);
  const record = headers as Readonly<Record<string, string | readonly string[] | undefined>>;
  const value = Object.hasOwn(record, name) ? record[name] : undefined;
  return typeof value === 'string' ? [value] : value;
}
