// Outbound route keys, addresses and expected peer IDs: exact host names or patterns where each `*`
// stands for exactly one DNS label, `{host}` address templates, and ID patterns that end in `/sa/*` or use
// `{namespace}`. Pure: parsing and matching only; the outbound resolves and connects.
import { SpiffeId, type TrustDomain } from '../identity/index.js';
import { type HostPort, isLoopbackHost, parseHostPort } from './host-port.js';

/** The literal that stands for the requested host name in a route address. */
export const HOST_TEMPLATE = '{host}';
/** The literal that stands for the requested host's namespace label in an expected ID. */
export const NAMESPACE_TEMPLATE = '{namespace}';

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** A last label that makes a host an IPv4 address to URL parsers and getaddrinfo (`127.1`, `10.0.0.0x1`). */
const NUMBER_LABEL = /^(?:[0-9]+|0x[0-9a-f]*)$/;
const EGRESS_DEFAULT_PORT = 443;

/** Where a route sends calls: a DNS name, an IP literal, or `{host}` (the name the app called). */
export interface RouteAddress {
  readonly host: string;
  readonly port: number;
}

/** What the route table needs of a route (RouteConfig in sidecar-config.ts has these fields). */
export interface RouteEntry {
  /** The key as written (lower case): `orders.shop` or `*.shop.svc.cluster.local`. */
  readonly host: string;
  readonly pattern: boolean;
  readonly address: RouteAddress;
  readonly ids: readonly SpiffeId[];
  readonly idPatterns: readonly string[];
}

/** True for a route key: a host name, or labels of which some are `*`. */
export function isRouteKey(key: string): boolean {
  if (key.length === 0 || key.length > 253) return false;
  return key.split('.').every((label) => label === '*' || DNS_LABEL.test(label));
}

/** `host:port` or `{host}:port`; undefined when the text is neither. */
export function parseRouteAddress(text: string): RouteAddress | undefined {
  if (text.startsWith(`${HOST_TEMPLATE}:`)) {
    const port = text.slice(HOST_TEMPLATE.length + 1);
    if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) return undefined;
    return Object.freeze({ host: HOST_TEMPLATE, port: Number(port) });
  }
  const parsed = parseHostPort(text);
  return parsed === undefined ? undefined : Object.freeze({ host: parsed.host.toLowerCase(), port: parsed.port });
}

/**
 * True for an expected-ID pattern: it ends in `/sa/*` (any workload of a namespace — weaker than an exact ID) or
 * uses `{namespace}`, and is a valid SPIFFE ID once the templates are filled in.
 */
export function isRouteIdPattern(text: string): boolean {
  const wildcard = text.endsWith('/sa/*');
  if (!wildcard && !text.includes(NAMESPACE_TEMPLATE)) return false;
  const filled = text.replaceAll(NAMESPACE_TEMPLATE, 'ns').replace(/\/\*$/, '/x');
  return !filled.includes('*') && !filled.includes('{') && SpiffeId.tryParse(filled) !== undefined;
}

/**
 * An egress entry (`host`, `host:port`, `*.domain`, `*.domain:port`; port 443 by default). Loopback names are
 * refused: egress never reaches the local app around its own sidecar.
 */
export function parseEgressEntry(text: string): HostPort | undefined {
  const value = text.toLowerCase();
  const wildcard = value.startsWith('*.');
  const rest = wildcard ? value.slice(2) : value;
  const parsed = /:\d{1,5}$/.test(rest) ? parseHostPort(rest) : { host: rest, port: EGRESS_DEFAULT_PORT };
  if (parsed === undefined || parsed.port === 0) return undefined;
  const name = parsed.host;
  if (!isRouteKey(name) || name.includes('*')) return undefined;
  if (isLoopbackHost(name) || name.endsWith('.localhost') || name === '0.0.0.0') return undefined;
  return Object.freeze({ host: wildcard ? `*.${name}` : name, port: parsed.port });
}

/** Routes by exact key first, then by the most specific pattern (most literal labels, then longest key). */
export class RouteTable<R extends RouteEntry> {
  readonly #exact = new Map<string, R>();
  readonly #patterns: { readonly route: R; readonly labels: readonly string[] }[] = [];

  constructor(routes: Iterable<R>) {
    for (const route of routes) {
      if (route.pattern) this.#patterns.push({ route, labels: route.host.split('.') });
      else this.#exact.set(route.host, route);
    }
    const literal = (labels: readonly string[]) => labels.filter((l) => l !== '*').length;
    this.#patterns.sort((a, b) => literal(b.labels) - literal(a.labels) || b.route.host.length - a.route.host.length);
  }

  get size(): number {
    return this.#exact.size + this.#patterns.length;
  }

  /** The route for a lower-case host name (no port), or undefined. */
  match(host: string): R | undefined {
    const exact = this.#exact.get(host);
    if (exact !== undefined || this.#patterns.length === 0) return exact;
    // A `*` stands for one DNS label and never for part of an IP literal, which would become the `{host}` address
    // (`::ffff:0:0` is 0.0.0.0, an address dropped when DNS answers it): an IPv6 host (`::ffff:7f00:1`,
    // `a:b.cafe`) has no such label, and a host whose last label is a number is an IPv4 address. Exact keys only.
    const labels = host.split('.');
    if (NUMBER_LABEL.test(labels[labels.length - 1] as string)) return undefined;
    for (const pattern of this.#patterns) if (labelsFit(pattern.labels, labels)) return pattern.route;
    return undefined;
  }
}

/** Whether a host's labels fit a pattern's: a `*` takes one DNS label, any other label only itself. */
function labelsFit(pattern: readonly string[], labels: readonly string[]): boolean {
  if (pattern.length !== labels.length) return false;
  for (let i = 0; i < pattern.length; i++) {
    const label = labels[i] as string;
    if (pattern[i] === '*' ? !DNS_LABEL.test(label) : pattern[i] !== label) return false;
  }
  return true;
}

/** The peer address for a call to `host` over `route` (`{host}` filled in). */
export function routeAddressFor(route: RouteEntry, host: string): RouteAddress {
  return route.address.host === HOST_TEMPLATE ? { host, port: route.address.port } : route.address;
}

/** The IDs a peer reached for `host` may present: exact IDs, and prefixes that one more path segment completes. */
export interface ExpectedIds {
  readonly exact: readonly SpiffeId[];
  /** e.g. `spiffe://example.org/ns/shop/sa/`: any single segment after it matches. */
  readonly prefixes: readonly string[];
}

/**
 * Fills `{namespace}` (the requested host's second label, Kubernetes `<service>.<namespace>[.svc…]`) into the
 * route's ID patterns. A pattern that needs a namespace the host does not have yields nothing (fails closed).
 */
export function expectedIdsFor(route: RouteEntry, host: string, trustDomain: TrustDomain): ExpectedIds {
  if (route.idPatterns.length === 0) return { exact: route.ids, prefixes: [] };
  const namespace = host.split('.')[1];
  const exact = [...route.ids];
  const prefixes: string[] = [];
  for (const pattern of route.idPatterns) {
    if (pattern.includes(NAMESPACE_TEMPLATE) && (namespace === undefined || !DNS_LABEL.test(namespace))) continue;
    const filled = namespace === undefined ? pattern : pattern.replaceAll(NAMESPACE_TEMPLATE, namespace);
    if (filled.endsWith('/*')) {
      const prefix = filled.slice(0, -1);
      if (SpiffeId.tryParse(`${prefix}x`)?.trustDomain.equals(trustDomain) === true) prefixes.push(prefix);
      continue;
    }
    const id = SpiffeId.tryParse(filled);
    if (id?.trustDomain.equals(trustDomain)) exact.push(id);
  }
  return { exact, prefixes };
}

/** True when `id` is one of the expected IDs, or one segment completes one of the prefixes. */
export function idIsExpected(expected: ExpectedIds, id: SpiffeId): boolean {
  for (const candidate of expected.exact) if (candidate.equals(id)) return true;
  const text = id.toString();
  for (const prefix of expected.prefixes) {
    if (text.length > prefix.length && text.startsWith(prefix) && !text.includes('/', prefix.length)) return true;
  }
  return false;
}
