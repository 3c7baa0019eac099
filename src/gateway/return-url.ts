// Where to send the browser after sign-in: a path on this gateway only (no open redirect, which would lend the
// gateway's name to a phishing link). Anything that a browser could read as another origin — `//evil`, `/\evil`,
// a scheme, control characters — becomes `/`. Pure.
// It travels sealed in a pre-login cookie: a longer deep link returns to `/` rather than growing the cookie.
const MAX_RETURN_CHARS = 512;

export function safeReturnPath(candidate: string | undefined): string {
  if (candidate === undefined || candidate.length === 0 || candidate.length > MAX_RETURN_CHARS) return '/';
  if (candidate.charCodeAt(0) !== 0x2f /* / */) return '/';
  const second = candidate.charCodeAt(1);
  if (second === 0x2f || second === 0x5c /* \ */) return '/';
  // Browsers drop tabs and newlines from URLs before parsing (`/\t/evil.example`), and treat `\` as `/`.
  for (let i = 0; i < candidate.length; i++) {
    const c = candidate.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || c === 0x5c) return '/';
  }
  try {
    const base = new URL('https://gateway.invalid');
    const resolved = new URL(candidate, base);
    if (resolved.origin !== base.origin) return '/';
    const path = `${resolved.pathname}${resolved.search}`;
    // Dot segments are removed while resolving: `/.//evil.example` and `/a/..//evil.example` become
    // `//evil.example`, which a browser reads as another origin. The result is checked as the input was.
    const first = path.charCodeAt(1);
    return first === 0x2f || first === 0x5c ? '/' : path;
  } catch {
    return '/';
  }
}
