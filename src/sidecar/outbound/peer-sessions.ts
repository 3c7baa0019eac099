// One HTTP/2 session per peer sidecar (SPEC §7: h2 over one reused mTLS connection, HTTP/1.1 fallback by ALPN),
// on node:http2 directly: undici 7's h2 client cost about twice the CPU per request (docs/performance.md). The
// TLS socket is opened here (one SecureContext per rotation, server authenticated by SPIFFE ID, security.md
// C21/C22) and handed to http2 only once ALPN chose h2; a peer that chose http/1.1 is served by PeerPools.
// GOAWAY, close or error forget the session so the next request reconnects; rotation retires sessions gracefully.
import { type ClientHttp2Session, connect as h2Connect } from 'node:http2';
import { isIP } from 'node:net';
import { type SecureContext, connect as tlsConnect } from 'node:tls';
import type { Pool } from 'undici';
import type { CredentialHolder, Credentials } from '../../agent/credential-holder.js';
import { formatHostPort, type RouteConfig } from '../../config/index.js';
import type { TrustDomain } from '../../identity/index.js';
import { clientSecureContext, spiffeServerIdentity, type TlsProfile } from '../../tls/index.js';
import type { PeerPools } from './peer-pools.js';

export interface PeerSessionsOptions {
  readonly trustDomain: TrustDomain;
  readonly holder: CredentialHolder;
  readonly profile: TlsProfile;
  readonly timeoutMs: number;
  /** Serves peers that negotiate http/1.1, and keeps the verified peer IDs (metric label). */
  readonly pools: PeerPools;
  readonly now?: () => Date;
}

/** Where a request to a peer goes: its h2 session, or an HTTP/1.1 pool when the peer refused h2. */
export type PeerTarget = ClientHttp2Session | Pool;

/** Idle sessions close after this long (as the HTTP/1.1 pools' keep-alive). */
const IDLE_MS = 60_000;

interface PeerState {
  session?: ClientHttp2Session | undefined;
  connecting?: Promise<PeerTarget> | undefined;
  /** The peer answered ALPN with http/1.1: use the pool until the next rotation. */
  http1?: boolean;
}

export class PeerSessions {
  readonly #options: PeerSessionsOptions;
  #states = new Map<string, PeerState>();
  readonly #open = new Set<ClientHttp2Session>();
  #context: { readonly credentials: Credentials; readonly secureContext: SecureContext } | undefined;
  readonly #unsubscribe: () => void;

  constructor(options: PeerSessionsOptions) {
    this.#options = options;
    this.#unsubscribe = options.holder.subscribe(() => this.#rotate());
  }

  /**
   * The session (or pool) for a route; a promise while the connection is being set up; undefined before the
   * first SVID. A failed connection rejects with the TLS/identity error (classified by the caller).
   */
  targetFor(route: RouteConfig): PeerTarget | Promise<PeerTarget> | undefined {
    let state = this.#states.get(route.host);
    if (state === undefined) {
      state = {};
      this.#states.set(route.host, state);
    }
    const session = state.session;
    if (session !== undefined) {
      if (!session.closed && !session.destroyed) return session;
      state.session = undefined; // closing (GOAWAY sent or received): new streams would be refused
    }
    if (state.http1 === true) return this.#options.pools.poolFor(route);
    if (state.connecting !== undefined) return state.connecting;
    const credentials = this.#options.holder.current;
    if (credentials === undefined) return undefined;
    const connecting = this.#connect(route, state, this.#secureContext(credentials));
    state.connecting = connecting;
    const settle = () => {
      if (state.connecting === connecting) state.connecting = undefined;
    };
    connecting.then(settle, settle);
    return connecting;
  }

  /** Graceful close: streams in flight finish (bounded by `deadline`), then every session is destroyed. */
  async close(deadline: number): Promise<void> {
    this.#unsubscribe();
    this.#states = new Map();
    const sessions = [...this.#open];
    const closed = sessions.map(
      (s) => new Promise<void>((resolve) => (s.closed ? resolve() : s.close(() => resolve()))),
    );
    const left = Math.max(0, deadline - Date.now());
    await Promise.race([Promise.allSettled(closed), new Promise((r) => setTimeout(r, left).unref())]);
    for (const session of sessions) session.destroy();
  }

  #secureContext(credentials: Credentials): SecureContext {
    if (this.#context?.credentials !== credentials) {
      this.#context = { credentials, secureContext: clientSecureContext(this.#options.profile, credentials) };
    }
    return this.#context.secureContext;
  }

  #connect(route: RouteConfig, state: PeerState, secureContext: SecureContext): Promise<PeerTarget> {
    const { trustDomain, timeoutMs, pools, now } = this.#options;
    const { host, port } = route.address;
    return new Promise<PeerTarget>((resolve, reject) => {
      const socket = tlsConnect({
        host,
        port,
        secureContext,
        ALPNProtocols: ['h2', 'http/1.1'],
        // An IP address sends no SNI; a host name is sent as SNI but never used to authenticate the server.
        ...(isIP(host) === 0 ? { servername: host } : {}),
        checkServerIdentity: spiffeServerIdentity(
          trustDomain,
          route.ids,
          (id) => pools.setPeerId(route, String(id)),
          now,
        ),
      });
      const timer = setTimeout(
        () => {
          const error = new Error(`connect to ${formatHostPort(route.address)} timed out`);
          socket.destroy(Object.assign(error, { code: 'UND_ERR_CONNECT_TIMEOUT' }));
        },
        Math.min(timeoutMs, 10_000),
      );
      const onError = (error: Error) => {
        clearTimeout(timer);
        reject(error);
      };
      socket.once('error', onError);
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        socket.on('error', ignore); // the session reports socket errors from here on
        if (socket.alpnProtocol !== 'h2') {
          socket.destroy();
          state.http1 = true;
          const pool = pools.poolFor(route);
          if (pool === undefined) reject(new Error('credentials withdrawn'));
          else resolve(pool);
          return;
        }
        socket.setNoDelay(true);
        const session = h2Connect(`https://${formatHostPort(route.address)}`, {
          createConnection: () => socket,
          settings: { enablePush: false },
        });
        this.#track(route, state, session);
        resolve(session);
      });
    });
  }

  #track(route: RouteConfig, state: PeerState, session: ClientHttp2Session): void {
    this.#open.add(session);
    const current = this.#states.get(route.host) === state;
    if (current) state.session = session;
    const forget = () => {
      if (state.session === session) state.session = undefined;
    };
    session.on('error', ignore); // failures reach the streams in flight, which answer their callers
    session.once('goaway', forget);
    session.once('close', () => {
      forget();
      this.#open.delete(session);
    });
    session.setTimeout(IDLE_MS, () => session.close());
    // Rotated while connecting: the waiting requests use it, then it retires like the others.
    if (!current) setImmediate(() => session.close());
  }

  /** New credentials: new connections use them; existing sessions finish their streams and close. */
  #rotate(): void {
    const old = this.#states;
    this.#states = new Map();
    for (const state of old.values()) state.session?.close();
  }
}

function ignore(): void {}
