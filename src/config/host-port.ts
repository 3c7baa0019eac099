// `host:port` values of the sidecar config (`listen`, `app`, route `address`). Pure.
// IPv6 literals are written in brackets (`[::1]:15001`); port 0 means "any free port" (tests).
import { isIP } from 'node:net';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/**
 * Dot-separated labels of letters, digits and hyphens, each 1–63 long and starting with a letter or digit, the whole
 * at most 253 and not ending in a hyphen. An empty label (`a..b`) is refused: at a CONNECT target it would match an
 * egress wildcard (`*.b`) as a name no resolver serves.
 */
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9][A-Za-z0-9-]{0,62}(\.[A-Za-z0-9][A-Za-z0-9-]{0,62})*(?<!-)$/;

/** Parses `host:port`, or returns undefined when the text is not one. */
export function parseHostPort(text: string): HostPort | undefined {
  const colon = text.lastIndexOf(':');
  if (colon <= 0) return undefined;
  let host = text.slice(0, colon);
  const portText = text.slice(colon + 1);
  if (!/^\d{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port > 65535) return undefined;
  if (host.startsWith('[')) {
    if (!host.endsWith(']')) return undefined;
    host = host.slice(1, -1);
    // An IPv6 literal, whole: text that only looks like one (`:::1`, `1::2::3`) used to pass and reach the
    // resolver as a name at bind or connect time (ENOTFOUND), after the config had been accepted. No zone IDs.
    if (isIP(host) !== 6 || host.includes('%')) return undefined;
  } else if (!HOST_NAME.test(host)) {
    return undefined;
  }
  return Object.freeze({ host, port });
}

/** `host:port` again, with brackets around IPv6 literals. */
export function formatHostPort(value: HostPort): string {
  return value.host.includes(':') ? `[${value.host}]:${value.port}` : `${value.host}:${value.port}`;
}

/** True for addresses only the local machine can reach (the outbound listener must be one). */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * The same port on the same host as a connection would reach it: hosts compared in the URL parser's canonical
 * form (case, IPv4 short forms such as `127.1` and `0`, IPv6 long forms, IPv4-mapped IPv6), a wildcard listener
 * taking every host, `localhost` standing for 127.0.0.1 and ::1.
 */
export function samePlace(a: HostPort, b: HostPort): boolean {
  if (a.port !== b.port) return false;
  const [x, y] = [canonicalHost(a.host), canonicalHost(b.host)];
  const wildcard = (h: string) => h === '0.0.0.0' || h === '::' || h === '';
  if (x === y || wildcard(x) || wildcard(y)) return true;
  const local = (h: string) => h === '127.0.0.1' || h === '::1';
  return (x === 'localhost' && local(y)) || (y === 'localhost' && local(x));
}

function canonicalHost(host: string): string {
  let name: string;
  try {
    name = new URL(`http://${host.includes(':') ? `[${host}]` : host}/`).hostname;
  } catch {
    return host.toLowerCase();
  }
  name = name.replace(/^\[|\]$/g, '');
  // ::ffff:7f00:1 → 127.0.0.1
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(name);
  if (mapped === null) return name;
  const [hi, lo] = [Number.parseInt(mapped[1] as string, 16), Number.parseInt(mapped[2] as string, 16)];
  return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
}
