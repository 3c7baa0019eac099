// The trust domain an expected peer ID names, and what a config or policy says when it is not the mesh's own.
// meshauth has no federation: a peer's SVID is accepted only in the sidecar's trust domain (svid-validator), so an
// ID of another one can never be a peer, a voucher or a hop of a call chain.

/** `spiffe://<td>/…` (an ID or an ID pattern, already validated) → `<td>` as written. */
export function trustDomainOfId(id: string): string {
  const rest = id.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  return slash === -1 ? rest : rest.slice(0, slash);
}

/** Why an expected ID of trust domain `other` is refused where the mesh's is `own` (named by the `trustDomain` key). */
export function foreignIdMessage(own: string, other: string): string {
  return `expected an ID in trust domain ${own} (trustDomain), not ${other}: meshauth has no federation, so no peer of another trust domain is ever accepted`;
}
