// The Host / :authority a request may carry (pure): checked by the inbound before any rule runs, and by
// `meshauth policy test` for a --host, so that both refuse the same values. An IP address has one spelling here.

/**
 * host[:port]: a DNS name / IPv4 address, or an IPv6 literal in brackets; never userinfo (`a@b`), a path, a
 * scheme or whitespace. Stricter than a URI's host syntax on purpose: URL parsers and the policy's host rule must
 * read the same name from it.
 */
const HOST = /^(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252}))(?::([0-9]{1,5}))?$/;

/** Four decimal numbers 0–255 without leading zeros: the only IPv4 spelling accepted. */
const DOTTED_QUAD = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

const IPV4_SPELLING =
  'expected an IPv4 address as four decimal numbers 0-255 without leading zeros, like "127.0.0.1" (a host whose ' +
  'last label is a number is an IPv4 address)';

/** True for a Host / :authority value that is a host name or address with an optional port. */
export function isHostPort(value: string): boolean {
  // An empty label (`internal.svc..`): no DNS name has one, and the policy's host rule strips one trailing dot only,
  // so `to.hosts: [internal.svc]` would miss it while an app that trims dots routes it to internal.svc.
  if (value.includes('..')) return false;
  const match = HOST.exec(value);
  if (match === null) return false;
  const port = match[1];
  if (port !== undefined && Number(port) > 65_535) return false;
  return ipSpellingError(value, port === undefined ? value.length : value.length - port.length - 1) === undefined;
}

/**
 * Why the host `text.slice(0, end)` (no port; already host syntax: a name, an IPv4 address, or an IPv6 literal in
 * brackets) is an IP address spelt other than its one accepted way; undefined for that spelling and for DNS names.
 *
 * A URL parser (`new URL`; getaddrinfo's inet_aton alike) reads a host whose last label is a
 * number (`127.1`, `2130706433`, `0x7f.0.0.1`, `127.0.0.01`) as an IPv4 address, and `[0::1]` as `[::1]`: an app
 * that builds `new URL(req.url, 'http://' + host)` sees 127.0.0.1 where `to.hosts` saw another string. Such
 * spellings are refused, not canonicalized, on both sides (requests here, policy entries in hostPatternError): the
 * app gets the Host as sent and `when.headers` compares it exactly, so with one spelling per address `to.hosts`,
 * header conditions, the audit log and the app all read the same string, and no request pays for a canonical form.
 * IPv6 may be in either case (`to.hosts` lower-cases); the canonical form is the one `new URL` serializes.
 */
export function ipSpellingError(text: string, end = text.length): string | undefined {
  // Cheap first: only a bracketed literal costs a URL object, and a name ending in a letter other than a–f or x is
  // ruled out on that one character, before its last label is scanned.
  if (text.charCodeAt(0) === 0x5b /* [ */) return ipv6SpellingError(text.slice(0, end));
  const stop = text.charCodeAt(end - 1) === 0x2e /* . */ ? end - 1 : end;
  if (!endsInNumber(text, stop)) return undefined;
  return DOTTED_QUAD.test(text.slice(0, stop)) ? undefined : IPV4_SPELLING;
}

/** Whether `new URL` reads the label before `stop` as a number: all decimal digits, or `0x` and hex digits. */
function endsInNumber(text: string, stop: number): boolean {
  const last = text.charCodeAt(stop - 1) | 0x20; // a letter in lower case; digits keep their code
  if (!isDigit(last) && !isHexLetter(last) && last !== 0x78 /* x */) return false;
  const start = text.lastIndexOf('.', stop - 1) + 1;
  const hex = stop - start >= 2 && text.charCodeAt(start) === 0x30 && (text.charCodeAt(start + 1) | 0x20) === 0x78;
  for (let i = hex ? start + 2 : start; i < stop; i++) {
    const c = text.charCodeAt(i) | 0x20;
    if (!isDigit(c) && !(hex && isHexLetter(c))) return false;
  }
  return stop > start;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isHexLetter(c: number): boolean {
  return c >= 0x61 && c <= 0x66;
}

function ipv6SpellingError(literal: string): string | undefined {
  let canonical: string;
  try {
    canonical = new URL(`http://${literal}/`).hostname;
  } catch {
    return 'expected an IPv6 address in brackets, like "[::1]"';
  }
  return canonical === literal.toLowerCase()
    ? undefined
    : `expected the IPv6 address in canonical form: "${canonical}"`;
}
