// The browser session: what the gateway keeps about a signed-in user, sealed in its own cookie(s) — no server-side
// store. Idle and absolute timeouts are enforced on every read; the idle clock is re-stamped at most once a minute, or
// once per tenth of the idle timeout when that is shorter (at least 1 s), not on every request: that would add a
// Set-Cookie to every response. A sealed session longer than one cookie is split into numbered chunks
// (`<name>=<count>:<part0>`, `<name>-1=<part1>`, …); more than MAX_CHUNKS, or more of the Cookie header than
// maxCookieBytes, is a clear error at sign-in, never a truncated cookie (nor cookies the gateway's own head limit would
// then refuse on every request).
import { MeshauthError } from '../errors/index.js';
import { clearCookie, setCookie } from './cookies.js';
import { type OpenFailure, open, seal } from './sealed-box.js';
import type { SessionKeyRing } from './session-keys.js';

export interface SessionData {
  /** This sign-in's random ID: what a sign-out remembers. */
  readonly sid: string;
  /** The end user's claims (sub, iss, scope, groups, configured claims). */
  readonly claims: Readonly<Record<string, unknown>>;
  /** Seconds: sign-in time (absolute timeout), last activity (idle timeout), access-token expiry. */
  readonly createdAt: number;
  readonly seenAt: number;
  readonly accessExpiresAt: number;
  readonly refreshToken?: string | undefined;
  /** Kept only when a route forwards the token (weaker, opt-in). */
  readonly accessToken?: string | undefined;
  /**
   * Kept only for RP-initiated logout (`id_token_hint`): when the provider offers it, and left out when the session
   * does not fit with it (BrowserSessions.fit).
   */
  readonly idToken?: string | undefined;
}

export type SessionFailure = OpenFailure | 'missing_chunk' | 'idle' | 'expired' | 'shape';

const CHUNK_CHARS = 3800;
const MAX_CHUNKS = 4;
const STAMP_INTERVAL_S = 60;

export class SessionCodec {
  readonly #ring: () => SessionKeyRing;
  readonly #name: string;
  /** The AAD: the cookie name and the gateway's provider and client, so no other gateway's session opens here. */
  readonly #purpose: string;
  readonly #idleS: number;
  readonly #absoluteS: number;
  readonly #maxCookieBytes: number;

  constructor(options: {
    readonly ring: () => SessionKeyRing;
    readonly cookieName: string;
    readonly idleTimeoutMs: number;
    readonly absoluteTimeoutMs: number;
    /**
     * Who signs users in here (the OIDC issuer and client ID): gateways that share session keys but not their
     * provider must not accept each other's sessions.
     */
    readonly signedInBy: string;
    /** How much of a request's Cookie header the session's cookies may take (`name=value; …`). */
    readonly maxCookieBytes: number;
  }) {
    this.#ring = options.ring;
    this.#name = options.cookieName;
    this.#purpose = `${options.cookieName} ${options.signedInBy}`;
    this.#idleS = Math.floor(options.idleTimeoutMs / 1000);
    this.#absoluteS = Math.floor(options.absoluteTimeoutMs / 1000);
    this.#maxCookieBytes = options.maxCookieBytes;
  }

  get cookieName(): string {
    return this.#name;
  }

  /** True for the names of this codec's cookies (the session and its chunks). */
  owns(name: string): boolean {
    return name === this.#name || (name.startsWith(`${this.#name}-`) && /^\d$/.test(name.slice(this.#name.length + 1)));
  }

  /** The session in `cookies`, or undefined (no cookie) or a failure (present but unusable). */
  read(
    cookies: ReadonlyMap<string, string>,
    nowS: number,
  ): { session: SessionData } | { failure: SessionFailure } | undefined {
    const opened = this.#open(cookies);
    if (opened === undefined || 'failure' in opened) return opened;
    const session = opened.session;
    if (nowS >= session.createdAt + this.#absoluteS) return { failure: 'expired' };
    if (nowS >= session.seenAt + this.#idleS) return { failure: 'idle' };
    return opened;
  }

  /**
   * The session in `cookies` whatever its timeouts, when its cookies are authentic (they open with a listed key and
   * hold a session): for a sign-out, which must remember a session whose own cookie went idle while a copy of it,
   * re-stamped elsewhere, is still in use. Never a session to serve a request with: that is read().
   */
  authentic(cookies: ReadonlyMap<string, string>): SessionData | undefined {
    const opened = this.#open(cookies);
    return opened === undefined || 'failure' in opened ? undefined : opened.session;
  }

  /** The session's cookies joined and opened, its shape checked; no clock involved. */
  #open(cookies: ReadonlyMap<string, string>): { session: SessionData } | { failure: SessionFailure } | undefined {
    const first = cookies.get(this.#name);
    if (first === undefined || first === '') return undefined;
    let sealed = first;
    const chunked = /^([2-9]):(.*)$/s.exec(first);
    if (chunked !== null) {
      const count = Number(chunked[1]);
      if (count > MAX_CHUNKS) return { failure: 'malformed' };
      const parts = [chunked[2] as string];
      for (let i = 1; i < count; i++) {
        const part = cookies.get(`${this.#name}-${i}`);
        if (part === undefined) return { failure: 'missing_chunk' };
        parts.push(part);
      }
      sealed = parts.join('');
    }
    const opened = open(this.#ring(), this.#purpose, sealed);
    if ('failure' in opened) return opened;
    const session = opened.value as SessionData;
    if (!isSession(session)) return { failure: 'shape' };
    return { session };
  }

  /** When a session ends whatever its use: its absolute timeout (seconds). */
  expiresAt(session: Pick<SessionData, 'createdAt'>): number {
    return session.createdAt + this.#absoluteS;
  }

  /** Whether the idle clock should be re-stamped now (then call write() with seenAt = now). */
  needsStamp(session: SessionData, nowS: number): boolean {
    return nowS - session.seenAt >= Math.min(STAMP_INTERVAL_S, Math.max(1, Math.floor(this.#idleS / 10)));
  }

  /**
   * Set-Cookie values for `session` (chunks past the first as needed), clearing chunks the request carried that
   * are no longer used. Throws MESHAUTH_ERR_SESSION_TOO_LARGE when it does not fit in MAX_CHUNKS cookies or in
   * maxCookieBytes of the Cookie header.
   */
  write(session: SessionData, present: ReadonlyMap<string, string>): string[] {
    const parts = this.#parts(session);
    const maxAge = session.createdAt + this.#absoluteS - Math.floor(Date.now() / 1000);
    const out: string[] = [];
    out.push(setCookie(this.#name, parts.length === 1 ? (parts[0] as string) : `${parts.length}:${parts[0]}`, maxAge));
    for (let i = 1; i < parts.length; i++) out.push(setCookie(`${this.#name}-${i}`, parts[i] as string, maxAge));
    for (let i = parts.length; i < MAX_CHUNKS + 1; i++) {
      if (present.has(`${this.#name}-${i}`)) out.push(clearCookie(`${this.#name}-${i}`));
    }
    return out;
  }

  /** Throws MESHAUTH_ERR_SESSION_TOO_LARGE when write() would: before a session replaces one that fits. */
  checkFits(session: SessionData): void {
    this.#parts(session);
  }

  /** The sealed session in cookie-sized parts; throws MESHAUTH_ERR_SESSION_TOO_LARGE (see write). */
  #parts(session: SessionData): string[] {
    const sealed = seal(this.#ring(), this.#purpose, session);
    const parts: string[] = [];
    for (let i = 0; i < sealed.length; i += CHUNK_CHARS) parts.push(sealed.slice(i, i + CHUNK_CHARS));
    if (parts.length > MAX_CHUNKS) {
      throw new MeshauthError(
        'MESHAUTH_ERR_SESSION_TOO_LARGE',
        `the session needs ${sealed.length} bytes, more than ${MAX_CHUNKS} cookies of ${CHUNK_CHARS}; ${whatIsLarge(session)}`,
        { reason: 'session_too_large' },
      );
    }
    // The browser sends these cookies with every request: past the gateway's head limit, every request of that
    // browser, logout included, would be refused until they expire.
    const headerBytes = cookieHeaderBytes(this.#name, parts);
    if (headerBytes > this.#maxCookieBytes) {
      throw new MeshauthError(
        'MESHAUTH_ERR_SESSION_TOO_LARGE',
        `the session's cookies need ${headerBytes} bytes of the Cookie header, more than the ${this.#maxCookieBytes} that limits.maxHeaderBytes leaves them; ${whatIsLarge(session)}, or raise limits.maxHeaderBytes`,
        { reason: 'session_too_large' },
      );
    }
    return parts;
  }

  /** Set-Cookie values that remove the session and every chunk the request carried. */
  clear(present: ReadonlyMap<string, string>): string[] {
    const out = [clearCookie(this.#name)];
    for (const name of present.keys()) if (name !== this.#name && this.owns(name)) out.push(clearCookie(name));
    return out;
  }
}

/**
 * The largest part of a session and what an operator can do about it, for MESHAUTH_ERR_SESSION_TOO_LARGE: the
 * advice must fit the cause (fewer oidc.claims cannot help when the claims are small).
 */
function whatIsLarge(session: SessionData): string {
  const parts: ReadonlyArray<readonly [number, string]> = [
    [
      JSON.stringify(session.claims).length,
      'the claims kept: keep fewer in oidc.claims (sub, iss, scope, groups and client_id are always kept; a long groups list comes from the provider)',
    ],
    [
      session.accessToken?.length ?? 0,
      'the access token, kept because a route has forwardToken: true: ask the provider for a smaller one',
    ],
    [session.refreshToken?.length ?? 0, 'the refresh token the provider issues'],
    [session.idToken?.length ?? 0, 'the ID token (kept for sign-out at the provider)'],
  ];
  let largest = parts[0] as readonly [number, string];
  for (const part of parts) if (part[0] > largest[0]) largest = part;
  return `its largest part (${largest[0]} characters) is ${largest[1]}`;
}

/** Bytes of `name=<count>:part0; name-1=part1; …` in a Cookie header. */
function cookieHeaderBytes(name: string, parts: readonly string[]): number {
  let bytes = 0;
  for (let i = 0; i < parts.length; i++) {
    const cookieName = i === 0 ? name : `${name}-${i}`;
    const prefix = i === 0 && parts.length > 1 ? `${parts.length}:` : '';
    bytes += (i === 0 ? 0 : 2) + cookieName.length + 1 + prefix.length + (parts[i] as string).length;
  }
  return bytes;
}

function isSession(value: unknown): value is SessionData {
  if (typeof value !== 'object' || value === null) return false;
  const s = value as Record<string, unknown>;
  return (
    typeof s.sid === 'string' &&
    typeof s.claims === 'object' &&
    s.claims !== null &&
    typeof (s.claims as Record<string, unknown>).sub === 'string' &&
    typeof s.createdAt === 'number' &&
    typeof s.seenAt === 'number' &&
    typeof s.accessExpiresAt === 'number'
  );
}
