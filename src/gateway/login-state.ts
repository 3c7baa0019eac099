// The pre-login cookies: what the callback needs to finish a sign-in this browser started
// (`state` bound to the user agent, so a callback carrying someone else's code — login CSRF — is refused).
// One cookie per sign-in in progress, named after a hash of its state (`<session>-login-<tag>`), so two tabs that
// both start a sign-in do not undo each other. Sealed like the session (purpose `<session>-login` as the AAD),
// ten minutes at most; the callback clears its own.
import { createHash } from 'node:crypto';
import { clearCookie, setCookie } from './cookies.js';
import { open, seal } from './sealed-box.js';
import type { SessionKeyRing } from './session-keys.js';

export interface LoginState {
  readonly state: string;
  readonly nonce: string;
  readonly verifier: string;
  /** Same-origin path to return to after sign-in. */
  readonly returnTo: string;
  readonly startedAt: number;
}

export const LOGIN_STATE_TTL_S = 600;
/**
 * Sign-ins one browser may have in progress. Each is a cookie, and any page can start one with a top-level
 * navigation: without a bound a few of them would push the browser's Cookie header past the gateway's head limit
 * (431 on every request, the callback included, for ten minutes).
 */
export const MAX_LOGINS_IN_PROGRESS = 3;

export class LoginStateCodec {
  readonly #ring: () => SessionKeyRing;
  readonly name: string;

  constructor(ring: () => SessionKeyRing, sessionCookieName: string) {
    this.#ring = ring;
    this.name = `${sessionCookieName}-login`;
  }

  /** The cookie name of the sign-in whose state is `state`. */
  nameFor(state: string): string {
    return `${this.name}-${createHash('sha256').update(state).digest('base64url').slice(0, 12)}`;
  }

  /** True when the request carries any pre-login cookie (a callback for another state is then a mismatch). */
  anyIn(cookies: ReadonlyMap<string, string>): boolean {
    for (const name of cookies.keys()) if (name.startsWith(`${this.name}-`)) return true;
    return false;
  }

  write(state: LoginState): string {
    return setCookie(this.nameFor(state.state), seal(this.#ring(), this.name, state), LOGIN_STATE_TTL_S);
  }

  /** The sign-in this browser started with this `state`, if its cookie is here, intact, fresh and agrees. */
  read(cookies: ReadonlyMap<string, string>, nowS: number, state: string): LoginState | undefined {
    const text = cookies.get(this.nameFor(state));
    if (text === undefined) return undefined;
    const opened = open(this.#ring(), this.name, text);
    if ('failure' in opened) return undefined;
    const s = opened.value as LoginState;
    if (
      typeof s !== 'object' ||
      s === null ||
      typeof s.state !== 'string' ||
      typeof s.nonce !== 'string' ||
      typeof s.verifier !== 'string' ||
      typeof s.returnTo !== 'string' ||
      typeof s.startedAt !== 'number'
    ) {
      return undefined;
    }
    if (nowS > s.startedAt + LOGIN_STATE_TTL_S || s.state !== state) return undefined;
    return s;
  }

  clear(state: string): string {
    return clearCookie(this.nameFor(state));
  }

  /**
   * Before one more sign-in starts: Set-Cookie values that remove the pre-login cookies past the newest
   * MAX_LOGINS_IN_PROGRESS - 1 (those that cannot be opened or have expired first, then the oldest).
   */
  makeRoom(cookies: ReadonlyMap<string, string>, nowS: number): string[] {
    const present: { name: string; startedAt: number }[] = [];
    for (const [name, text] of cookies) {
      if (!name.startsWith(`${this.name}-`)) continue;
      const opened = open(this.#ring(), this.name, text);
      const startedAt = 'value' in opened ? (opened.value as Partial<LoginState> | null)?.startedAt : undefined;
      const usable = typeof startedAt === 'number' && nowS <= startedAt + LOGIN_STATE_TTL_S;
      present.push({ name, startedAt: usable ? startedAt : Number.NEGATIVE_INFINITY });
    }
    const excess = present.length - (MAX_LOGINS_IN_PROGRESS - 1);
    if (excess <= 0) return [];
    present.sort((a, b) => a.startedAt - b.startedAt);
    return present.slice(0, excess).map((cookie) => clearCookie(cookie.name));
  }
}
