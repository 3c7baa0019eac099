// The pre-login cookie: what the callback needs to finish a sign-in this browser started (OAuth 2.0 Security BCP
// §4.7: `state` bound to the user agent, so a callback carrying someone else's code — login CSRF — is refused).
// Sealed like the session, under its own name (the AAD), ten minutes at most.
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

export class LoginStateCodec {
  readonly #ring: () => SessionKeyRing;
  readonly name: string;

  constructor(ring: () => SessionKeyRing, sessionCookieName: string) {
    this.#ring = ring;
    this.name = `${sessionCookieName}-login`;
  }

  write(state: LoginState): string {
    return setCookie(this.name, seal(this.#ring(), this.name, state), LOGIN_STATE_TTL_S);
  }

  read(cookies: ReadonlyMap<string, string>, nowS: number): LoginState | undefined {
    const text = cookies.get(this.name);
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
    if (nowS > s.startedAt + LOGIN_STATE_TTL_S) return undefined;
    return s;
  }

  clear(): string {
    return clearCookie(this.name);
  }
}
