// Hosts for `to.hosts`: compared case-insensitively, without the port and without a trailing dot, on both the
// policy side and the request side, so a host spelled differently cannot slip past a rule. An IP address has one
// spelling on both sides (ipSpellingError: requests spelling it another way are refused before any rule runs, and so
// is an entry here that no request could match). Pure.
import { ipSpellingError } from '../host-validate.js';

const HOST_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;
const BRACKETED_V6 = /^\[[0-9a-f:.]+\]$/;

/** `Orders.Shop.svc.:8080` → `orders.shop.svc`; `[::1]:80` → `[::1]`. */
export function normalizeHost(host: string): string {
  let h = host;
  if (h.startsWith('[')) {
    const close = h.indexOf(']');
    if (close !== -1) h = h.slice(0, close + 1);
  } else {
    const colon = h.indexOf(':');
    if (colon !== -1) h = h.slice(0, colon);
    if (h.endsWith('.')) h = h.slice(0, -1);
  }
  return h.toLowerCase();
}

export function hostPatternError(pattern: string): string | undefined {
  const host = pattern.toLowerCase();
  const bare = host.endsWith('.') ? host.slice(0, -1) : host;
  if (bare.includes(':') && !bare.startsWith('[')) return 'expected a host name without a port (use to.ports)';
  if (!HOST_NAME.test(bare) && !BRACKETED_V6.test(bare)) {
    return 'expected a host name like "orders.shop.svc" (no wildcards, no port)';
  }
  return ipSpellingError(bare);
}
