// Cookie header parsing and Set-Cookie building for the gateway's own cookies. Pure.
// Every cookie the gateway sets is `__Host-` prefixed: Secure, Path=/, no Domain, so no sibling host and no
// plain-http page can set or read it.

/** name → value of a Cookie header (first occurrence wins: a later duplicate cannot shadow it). */
export function parseCookies(header: string | readonly string[] | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (header === undefined) return out;
  const text = typeof header === 'string' ? header : header.join('; ');
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    if (name === '' || out.has(name)) continue;
    out.set(name, part.slice(eq + 1).trim());
  }
  return out;
}

/** The Cookie header without the named cookies (or those starting with `prefix`); undefined when empty. */
export function cookieHeaderWithout(
  header: string | readonly string[] | undefined,
  isOurs: (name: string) => boolean,
): string | undefined {
  if (header === undefined) return undefined;
  const text = typeof header === 'string' ? header : header.join('; ');
  const kept = text
    .split(';')
    .map((p) => p.trim())
    .filter((p) => {
      if (p === '') return false;
      const eq = p.indexOf('=');
      return !isOurs((eq === -1 ? p : p.slice(0, eq)).trim());
    });
  return kept.length === 0 ? undefined : kept.join('; ');
}

export function setCookie(name: string, value: string, maxAgeSeconds?: number): string {
  const age = maxAgeSeconds === undefined ? '' : `; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`;
  return `${name}=${value}; Path=/; Secure; HttpOnly; SameSite=Lax${age}`;
}

export function clearCookie(name: string): string {
  return `${name}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0`;
}
