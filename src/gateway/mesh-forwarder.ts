// The gateway's one adapter onto the sidecar's outbound machinery (src/sidecar/outbound): the gateway runs an
// OutboundListener of its own on an ephemeral loopback port, with one outbound route per gateway route (key =
// route name, the route's address and SPIFFE ID), so mTLS with its SVID, server authentication by SPIFFE ID,
// HTTP/2 session reuse, rotation and passport wrapping are exactly the sidecar's. The edge hands it each request
// with the origin passport it minted; the outbound's passport wrapper turns it into link + origin for the route's
// ID (the gateway is the voucher and the first actor). A random per-process key, checked and removed by the
// outbound hook, keeps other local processes from using that loopback port to act as the gateway.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Pool } from 'undici';
import type { CredentialHolder } from '../agent/index.js';
import type { EndUser } from '../authn/end-user.js';
import { mintOriginPassport, ownOrigin, PASSPORT_HEADER } from '../authn/passport/index.js';
import { formatHostPort, sidecarConfigFromObject } from '../config/index.js';
import { MeshauthError } from '../errors/index.js';
import { OutboundListener } from '../sidecar/outbound/outbound-listener.js';
import { passportWrapper } from '../sidecar/outbound/passport-wrapper.js';
import { PassportStore } from '../sidecar/passport-store.js';
import type { Logger, Metrics } from '../telemetry/index.js';
import type { GatewayConfig, GatewayRoute } from './gateway-config.js';

const KEY_HEADER = 'x-gateway-forward-key';
/** How long the outbound side may wrap a minted origin (a passport lives ≤ 60 s anyway). */
const ORIGIN_TTL_MS = 60_000;
/** A cached origin is reused while at least this much of its life is left (every request still gets a new link). */
const ORIGIN_REUSE_MARGIN_S = 10;
const MAX_CACHED_ORIGINS = 10_000;

// Response headers that describe the hop, not the message (RFC 9110 §7.6.1; HTTP/2 forbids them, RFC 9113 §8.2.2).
const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'http2-settings',
]);

export interface ForwardRequest {
  readonly route: GatewayRoute;
  readonly method: string;
  /** Normalized path + raw query. */
  readonly target: string;
  /** Already cleaned by the edge (no cookies of ours, no Authorization unless opted in, no identity headers). */
  readonly headers: Record<string, string | string[]>;
  readonly body: Readable | null;
  readonly user: EndUser | undefined;
  /** Cookie names the service may not set (the gateway's own): such Set-Cookie lines are dropped. */
  readonly reservedCookie: (name: string) => boolean;
}

/** What the edge writes the answer to: node:http's ServerResponse or node:http2's compat response. */
export interface ResponseSink {
  readonly headersSent: boolean;
  readonly destroyed: boolean;
  writeHead(status: number, headers: OutgoingHttpHeaders): unknown;
  destroy(error?: Error): unknown;
  on(event: 'close', listener: () => void): unknown;
}

export class MeshForwarder {
  readonly #holder: CredentialHolder;
  readonly #outbound: OutboundListener;
  readonly #store = new PassportStore();
  readonly #key = randomBytes(24).toString('base64url');
  readonly #now: () => Date;
  #pool: Pool | undefined;
  /**
   * Origins minted per end user (by claims and expiry) and SVID: an ECDSA signature per request saved. The origin is
   * addressed to the gateway itself and only travels inside a fresh per-request link, as one origin serves a chain.
   */
  readonly #origins = new Map<string, { readonly origin: string; readonly expiresAt: number }>();
  #originsFor: object | undefined;

  constructor(options: {
    readonly config: GatewayConfig;
    readonly holder: CredentialHolder;
    readonly metrics: Metrics;
    readonly logger: Logger;
    readonly now: () => Date;
  }) {
    const { config, holder, metrics, logger, now } = options;
    this.#holder = holder;
    this.#now = now;
    const routes: Record<string, { address: string; ids: string[] }> = {};
    for (const route of config.routes) {
      routes[route.name] = { address: formatHostPort(route.address), ids: route.ids.map((id) => id.toString()) };
    }
    const sidecarConfig = sidecarConfigFromObject(
      {
        trustDomain: config.trustDomain.name,
        ca: config.ca,
        inbound: { listen: '127.0.0.1:0', app: '127.0.0.1:1' },
        outbound: { listen: '127.0.0.1:0', routes, timeout: `${config.limits.upstreamTimeoutMs}ms` },
        admin: { listen: '127.0.0.1:0' },
      },
      `${config.source} (gateway outbound)`,
    );
    const wrap = passportWrapper({ holder, store: this.#store, metrics, now });
    const key = Buffer.from(this.#key);
    this.#outbound = new OutboundListener({
      config: sidecarConfig,
      holder,
      metrics,
      logger,
      now,
      onOutboundRequest: (context) => {
        const headers = context.headers;
        let found = false;
        for (let i = 0; i < headers.length; i += 2) {
          if ((headers[i] as string).toLowerCase() !== KEY_HEADER) continue;
          const given = Buffer.from(headers[i + 1] as string);
          found = given.length === key.length && timingSafeEqual(given, key);
          headers.splice(i, 2);
          break;
        }
        if (!found) {
          return Promise.reject(
            new MeshauthError('MESHAUTH_ERR_FORBIDDEN', 'the gateway outbound serves the gateway only', {
              reason: 'not_gateway',
            }),
          );
        }
        return wrap(context);
      },
    });
  }

  async listen(): Promise<void> {
    const port = await this.#outbound.listen();
    this.#pool = new Pool(`http://127.0.0.1:${port}`, {
      connections: 256,
      keepAliveTimeout: 30_000,
      headersTimeout: 0,
      bodyTimeout: 0,
    });
  }

  /** Sends the request into the mesh and streams the answer into `res`. Never throws: errors become responses. */
  async forward(request: ForwardRequest, res: ResponseSink, onError: (error: MeshauthError) => void): Promise<void> {
    const pool = this.#pool;
    if (pool === undefined) {
      onError(new MeshauthError('MESHAUTH_ERR_NOT_READY', 'gateway outbound not started', { reason: 'not_ready' }));
      return;
    }
    const headers = request.headers;
    headers.host = request.route.name;
    headers[KEY_HEADER] = this.#key;
    if (request.user !== undefined) {
      const credentials = this.#holder.current;
      if (credentials === undefined) {
        onError(new MeshauthError('MESHAUTH_ERR_NOT_READY', 'no SVID yet', { reason: 'not_ready' }));
        return;
      }
      headers[PASSPORT_HEADER] = this.#originFor(request.user, credentials);
    }
    let response: Awaited<ReturnType<Pool['request']>>;
    try {
      response = await pool.request({
        path: request.target,
        method: request.method as 'GET',
        headers,
        body: request.body,
      });
    } catch (cause) {
      onError(
        new MeshauthError('MESHAUTH_ERR_UPSTREAM_UNAVAILABLE', 'gateway outbound failed', {
          reason: 'outbound',
          cause,
        }),
      );
      return;
    }
    if (res.destroyed) {
      response.body.destroy();
      return;
    }
    const out: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(response.headers)) {
      if (value === undefined || HOP_BY_HOP.has(name)) continue;
      if (name === 'set-cookie') {
        // A service must never plant or overwrite the gateway's session (session fixation by a compromised app).
        const kept = (Array.isArray(value) ? value : [value]).filter(
          (line) => !request.reservedCookie(line.slice(0, Math.max(0, line.indexOf('='))).trim()),
        );
        if (kept.length > 0) out[name] = kept;
        continue;
      }
      out[name] = value;
    }
    res.writeHead(response.statusCode, out);
    await pipeline(response.body, res as unknown as NodeJS.WritableStream).catch(() => {
      if (!res.destroyed) res.destroy();
    });
  }

  #originFor(user: EndUser, credentials: NonNullable<CredentialHolder['current']>): string {
    const at = this.#now();
    const nowS = at.getTime() / 1000;
    if (this.#originsFor !== credentials) {
      this.#origins.clear(); // a rotated SVID signs new origins from now on
      this.#originsFor = credentials;
    }
    const key = `${user.expiresAt}|${JSON.stringify(user.claims)}`;
    const cached = this.#origins.get(key);
    if (cached !== undefined && cached.expiresAt - nowS >= ORIGIN_REUSE_MARGIN_S) return cached.origin;
    const origin = mintOriginPassport({ svid: credentials.svid, now: at, user });
    this.#store.remember(
      ownOrigin(origin, credentials.svid.id, user.expiresAt),
      Math.min(user.expiresAt * 1000, at.getTime() + ORIGIN_TTL_MS),
    );
    if (this.#origins.size >= MAX_CACHED_ORIGINS) this.#origins.clear();
    const payload = JSON.parse(Buffer.from(origin.split('.')[1] as string, 'base64url').toString('utf8')) as {
      exp: number;
    };
    this.#origins.set(key, { origin, expiresAt: payload.exp });
    return origin;
  }

  async close(deadline: number): Promise<void> {
    await this.#pool?.close().catch(() => undefined);
    await this.#outbound.close(deadline);
  }
}

/** Header names the edge must never pass on from the client (the forwarder sets them). */
export function isForwarderHeader(lowerName: string): boolean {
  return lowerName === KEY_HEADER;
}

export type { IncomingHttpHeaders };
