// Where to send the browser after sign-in: a path on this gateway only (no open redirect, OAuth 2.0 Security BCP
// §4.11). Anything that a browser could read as another origin — `//evil`, `/\evil`, a scheme, control
// characters — becomes `/`. Pure.
const MAX_RETURN_CHARS = 2048;

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
    return `${resolved.pathname}${resolved.search}`;
  } catch {
    return '/';
  }
}
