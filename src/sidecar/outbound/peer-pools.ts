// One undici Pool per route (peer sidecar): HTTP/1.1 keep-alive connections (`outbound.http2: false`, or a peer
// that negotiated http/1.1 by ALPN), mTLS with the current SVID, server authenticated by SPIFFE ID (security.md
// C21/C22). One SecureContext per rotation is shared by every connection. On rotation the pools are replaced; the
// old ones close gracefully once their in-flight requests finish, so no request fails.
import type { SecureContext } from 'node:tls';
import { Pool } from 'undici';
import type { CredentialHolder, Credentials } from '../../agent/credential-holder.js';
import { formatHostPort, type RouteConfig } from '../../config/index.js';
import type { TrustDomain } from '../../identity/index.js';
import { clientSecureContext, spiffeServerIdentity, type TlsProfile } from '../../tls/index.js';

export interface PeerPoolsOptions {
  readonly trustDomain: TrustDomain;
  readonly holder: CredentialHolder;
  readonly profile: TlsProfile;
  readonly timeoutMs: number;
  readonly now?: () => Date;
}

export class PeerPools {
  readonly #options: PeerPoolsOptions;
  #pools = new Map<string, Pool>();
  readonly #retiring = new Set<Promise<void>>();
  /** Last verified server ID per route host: the outbound `peer_id` metric label. */
  readonly #peerIds = new Map<string, string>();
  readonly #unsubscribe: () => void;
  #context: { readonly credentials: Credentials; readonly secureContext: SecureContext } | undefined;

  constructor(options: PeerPoolsOptions) {
    this.#options = options;
    this.#unsubscribe = options.holder.subscribe(() => this.#rotate());
  }

  /** The pool for a route, created on first use with the current credentials; undefined before the first SVID. */
  poolFor(route: RouteConfig): Pool | undefined {
    const pool = this.#pools.get(route.host);
    if (pool !== undefined) return pool;
    const credentials = this.#options.holder.current;
    if (credentials === undefined) return undefined;
    const created = this.#create(route, credentials);
    this.#pools.set(route.host, created);
    return created;
  }

  peerIdOf(route: RouteConfig): string {
    return this.#peerIds.get(route.host) ?? '';
  }

  /** Graceful close: in-flight requests finish (bounded by `deadline`), then everything is destroyed. */
  async close(deadline: number): Promise<void> {
    this.#unsubscribe();
    const pools = [...this.#pools.values()];
    this.#pools = new Map();
    const closing = Promise.allSettled([...pools.map((p) => p.close()), ...this.#retiring]);
    const left = Math.max(0, deadline - Date.now());
    await Promise.race([closing, new Promise((r) => setTimeout(r, left).unref())]);
    await Promise.allSettled(pools.map((p) => p.destroy()));
  }

  /** Records the server ID verified on a connection to `route` (also used by the h2 sessions). */
  setPeerId(route: RouteConfig, id: string): void {
    this.#peerIds.set(route.host, id);
  }

  #create(route: RouteConfig, credentials: Credentials): Pool {
    const { trustDomain, profile, timeoutMs, now } = this.#options;
    const peerIds = this.#peerIds;
    if (this.#context?.credentials !== credentials) {
      this.#context = { credentials, secureContext: clientSecureContext(profile, credentials) };
    }
    return new Pool(`https://${formatHostPort(route.address)}`, {
      allowH2: false,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      keepAliveTimeout: 60_000,
      connectTimeout: Math.min(timeoutMs, 10_000),
      connect: {
        secureContext: this.#context.secureContext,
        // An IP address sends no SNI; a host name is sent as SNI but never used to authenticate the server.
        checkServerIdentity: spiffeServerIdentity(
          trustDomain,
          route.ids,
          (id) => peerIds.set(route.host, id.toString()),
          now,
        ),
      },
    });
  }

  #rotate(): void {
    const old = this.#pools;
    this.#pools = new Map();
    for (const pool of old.values()) {
      const closing = pool.close().catch(() => undefined);
      this.#retiring.add(closing);
      void closing.then(() => this.#retiring.delete(closing));
    }
  }
}
