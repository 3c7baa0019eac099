// The trust domain an expected peer ID names, and what a config or policy says when it is not the mesh's own.
// meshauth has no federation: a peer's SVID is accepted only in the sidecar's trust domain (svid-validator), so an
// ID of another one can never be a peer, a voucher or a hop of a call chain.
import type { z } from 'zod';

/** `spiffe://<td>/…` (an ID or an ID pattern, already validated) → `<td>` as written. */
export function trustDomainOfId(id: string): string {
  const rest = id.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  return slash === -1 ? rest : rest.slice(0, slash);
}

/**
 * One issue per ID of `ids` (a value as parsed, of any shape: what is not a list of `spiffe://` strings is left to
 * its own schema) outside trust domain `own`, at `path` and its index.
 */
export function refuseForeignIds(
  own: string,
  ids: unknown,
  path: readonly (string | number)[],
  ctx: z.core.$RefinementCtx,
): void {
  if (!Array.isArray(ids)) return;
  for (const [index, id] of ids.entries()) {
    if (typeof id !== 'string' || !id.startsWith('spiffe://')) continue;
    const other = trustDomainOfId(id);
    if (other === own) continue;
    ctx.addIssue({
      code: 'custom',
      path: [...path, index],
      message: `expected an ID in trust domain ${own} (trustDomain), not ${other}: meshauth has no federation, so no peer of another trust domain is ever accepted`,
    });
  }
}
