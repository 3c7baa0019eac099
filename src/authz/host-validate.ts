// The Host / :authority a request may carry (pure): checked by the inbound before any rule runs, and by
// `meshauth policy test` for a --host, so that both refuse the same values.

/**
 * host[:port]: a DNS name / IPv4 address, or an IPv6 literal in brackets; never userinfo (`a@b`), a path, a
 * scheme or whitespace. Stricter than a URI's host syntax on purpose: URL parsers and the policy's host rule must
 * read the same name from it.
 */
const HOST = /^(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252}))(?::([0-9]{1,5}))?$/;

/** True for a Host / :authority value that is a host name or address with an optional port. */
export function isHostPort(value: string): boolean {
  // An empty label (`internal.svc..`): no DNS name has one, and the policy's host rule strips one trailing dot only,
  // so `to.hosts: [internal.svc]` would miss it while an app that trims dots routes it to internal.svc.
  if (value.includes('..')) return false;
  const match = HOST.exec(value);
  if (match === null) return false;
  const port = match[1];
  return port === undefined || Number(port) <= 65_535;
}
