// When the trust bundle loses a root, connections already established with peers whose chain leads to that root
// must not outlive it (the inbound's clients, the outbound TCP tunnels' servers): new handshakes use the new bundle at
// once, and these helpers find the live connections to cut: those whose leaf has no signed path, among the
// certificates the peer presented, to a root that stays. Synchronous node:crypto checks.
//
// Node does not always report that chain: on a socket of Node 24's tls.Server (which the inbound no longer uses)
// it reports the leaf alone, and its issuer links stop early on some orders. The chain is completed from the intermediates this sidecar knows (its
// own SVID's, which sign every peer of the same CA); a connection whose chain still cannot be shown to reach a
// root that stays is cut — failing closed costs that peer one reconnect.
import { X509Certificate } from 'node:crypto';
import type { TrustBundle, X509Svid } from '../pki/index.js';
import { signersAbove } from './signers-above.js';

/** The credentials a switch is between (CredentialHolder's, structurally). */
interface Credentials {
  readonly svid: X509Svid;
  readonly bundle: TrustBundle;
}

/** Roots of `before` that `after` no longer holds, as node:crypto certificates (empty when none left). */
export function removedRoots(before: TrustBundle | undefined, after: TrustBundle): X509Certificate[] {
  if (before === undefined) return [];
  const der = (root: TrustBundle['roots'][number]) => Buffer.from(root.rawData).toString('base64');
  const kept = new Set(after.roots.map(der));
  return before.roots
    .filter((root) => !kept.has(der(root)))
    .map((root) => new X509Certificate(Buffer.from(root.rawData)));
}

/** The intermediates (certificates after the leaf) of these SVIDs, as node:crypto certificates. */
export function intermediatesOf(svids: readonly (X509Svid | undefined)[]): X509Certificate[] {
  return svids.flatMap((svid) =>
    (svid?.intermediates ?? []).map((cert) => new X509Certificate(Buffer.from(cert.rawData))),
  );
}

/** Roots of `bundle` as node:crypto certificates. */
export function rootsOf(bundle: TrustBundle): X509Certificate[] {
  return bundle.roots.map((root) => new X509Certificate(Buffer.from(root.rawData)));
}

/**
 * `chain` with the issuer of its last certificate appended from `intermediates` when the peer's own report stopped
 * at a certificate that is not self-issued (the intermediate is verified to have signed it).
 */
export function completedChain(chain: readonly Buffer[], intermediates: readonly X509Certificate[]): readonly Buffer[] {
  const lastDer = chain.at(-1);
  if (lastDer === undefined) return chain;
  const last = new X509Certificate(lastDer);
  if (last.checkIssued(last)) return chain;
  const issuer = intermediates.find((candidate) => last.checkIssued(candidate) && last.verify(candidate.publicKey));
  return issuer === undefined ? chain : [...chain, issuer.raw];
}

/**
 * True when `chain` (DER, leaf first) holds a path from its leaf up to one of `roots`: a certificate of the chain on a
 * signed path up from the leaf (signersAbove, whatever the order, every branch) that one of `roots` signed, or the
 * leaf itself signed by one. A certificate of the chain that one of `roots` signed but that is not on the leaf's path
 * (a peer of a removed root adding the kept root's public intermediate) does not count; one intermediate key
 * cross-signed by a removed and a kept root counts in either order. A chain whose search stopped on certificates that
 * named an issuer they were not is not shown to reach a kept root.
 */
export function chainsToAny(chain: readonly Buffer[], roots: readonly X509Certificate[]): boolean {
  const [leafDer, ...aboveDer] = chain;
  if (leafDer === undefined) return false;
  const leaf = new X509Certificate(leafDer);
  const signers = signersAbove(
    leaf,
    aboveDer.map((der) => new X509Certificate(der)),
  );
  if (signers === undefined) return false;
  return [leaf, ...signers].some((cert) => roots.some((root) => cert.checkIssued(root) && cert.verify(root.publicKey)));
}

/** The roots a removal kept, and the intermediates that complete a chain Node reported in part. */
export interface KeptRoots {
  readonly roots: readonly X509Certificate[];
  readonly intermediates: readonly X509Certificate[];
}

/** Nothing removed yet: no chain is judged against it. */
export const NOTHING_KEPT: KeptRoots = Object.freeze({ roots: [], intermediates: [] });

/**
 * What a switch from `previous` to `next` credentials keeps, when it removes a root from the bundle (undefined when it
 * removes none): the roots of `next`, and our own SVIDs' intermediates, which sign every peer of our CA and complete
 * the chains Node reported in part.
 */
export function keptRootsAfter(previous: Credentials | undefined, next: Credentials): KeptRoots | undefined {
  if (removedRoots(previous?.bundle, next.bundle).length === 0) return undefined;
  return { roots: rootsOf(next.bundle), intermediates: intermediatesOf([previous?.svid, next.svid]) };
}

/** True when `chain` (DER, leaf first) has a signed path to a root `kept` holds, completed from its intermediates. */
export function chainsToKept(chain: readonly Buffer[], kept: KeptRoots): boolean {
  return chainsToAny(completedChain(chain, kept.intermediates), kept.roots);
}
