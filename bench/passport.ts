// Passport cost per hop: verify + mint (wrap) of a link never seen before, what a sidecar pays for the first request
// of a passport on a connection, and the same for a link it saw before and a link it may still share (sharedLink),
// what every later request of that passport pays. Also reports the header size at each depth. A benchmark, not a
// test: it asserts nothing.
import { pathToFileURL } from 'node:url';
import { endUserFromClaims } from '../src/authn/end-user.js';
import {
  leafKeyOf,
  mintOriginPassport,
  ownOrigin,
  type SharedLink,
  sharedLink,
  thumbprintOfDer,
  verifyPassport,
  wrapPassport,
} from '../src/authn/passport/index.js';
import { SpiffeId, TrustDomain } from '../src/identity/index.js';
import {
  createIntermediateCertificate,
  createLeafCertificate,
  createRootCertificate,
  exportPrivateKeyPem,
  generateKeyPair,
  TrustBundle,
  X509Svid,
} from '../src/pki/index.js';

export interface PassportBenchResult {
  readonly name: string;
  readonly mintVerifyP50Us: number;
  readonly mintVerifyP99Us: number;
  /** Verify of a link seen before on the connection + hand-out of a shared link: a later request of a passport. */
  readonly sharedP50Us: number;
  readonly headerBytesByDepth: readonly number[];
}

export async function benchPassport(options: { quick: boolean }): Promise<PassportBenchResult> {
  const td = TrustDomain.parse('bench.test');
  const now = new Date();
  const rootKeys = await generateKeyPair();
  const root = await createRootCertificate({ trustDomain: td, keys: rootKeys, now });
  const interKeys = await generateKeyPair();
  const intermediate = await createIntermediateCertificate({
    trustDomain: td,
    keys: interKeys,
    issuer: { certificate: root, privateKey: rootKeys.privateKey, keyType: 'p256' },
    now,
  });
  const issuer = { certificate: intermediate, privateKey: interKeys.privateKey, keyType: 'p256' as const };
  const bundle = new TrustBundle(td, [root]);
  const hops: X509Svid[] = [];
  for (let i = 0; i < 9; i++) {
    const keys = await generateKeyPair();
    const id = SpiffeId.forKubernetes(td, 'bench', `svc${i}`);
    const leaf = await createLeafCertificate({ id, publicKey: keys.publicKey, issuer, now, ttlMs: 3600_000 });
    hops.push(
      new X509Svid({
        id,
        certificates: [leaf, intermediate],
        privateKeyPem: await exportPrivateKeyPem(keys.privateKey),
        keyType: 'p256',
      }),
    );
  }
  const user = endUserFromClaims(
    { sub: 'alice', iss: 'https://idp.bench', scope: 'orders:read', exp: Math.floor(now.getTime() / 1000) + 3600 },
    ['scope'],
  );
  if (user === undefined) throw new Error('bench user');
  const svid = (i: number) => hops[i] as X509Svid;
  const context = (self: number, peer: number) => ({
    self: svid(self).id,
    peerId: svid(peer).id,
    peerThumbprint: thumbprintOfDer(new Uint8Array(svid(peer).leaf.rawData)),
    peerKey: leafKeyOf(Buffer.from(svid(peer).leaf.rawData).toString('base64')).key,
    bundle,
    vouchers: new Set([svid(0).id.toString()]),
    claims: ['scope'],
    now,
  });

  // Header size by depth: the voucher (hop 0) mints the origin and the first link; each later hop re-links.
  const sizes: number[] = [];
  const origin = ownOrigin(mintOriginPassport({ svid: svid(0), now, user }), svid(0).id, user.expiresAt);
  let value = wrapPassport({ svid: svid(0), audience: svid(1).id, now, received: origin });
  sizes.push(Buffer.byteLength(value));
  for (let hop = 1; hop < 8; hop++) {
    const received = verifyPassport(value, context(hop, hop - 1));
    value = wrapPassport({ svid: svid(hop), audience: svid(hop + 1).id, now, received });
    sizes.push(Buffer.byteLength(value));
  }

  // Per-hop cost (gateway → B → C): B verifies what the gateway sent and wraps it for C. A new link from the gateway
  // each time (minted outside the clock), so that B's check of it is never one it made before.
  const iterations = options.quick ? 300 : 3000;
  const fresh: number[] = [];
  for (let i = 0; i < iterations + 100; i++) {
    const atGateway = wrapPassport({ svid: svid(0), audience: svid(1).id, now, received: origin });
    const start = process.hrtime.bigint();
    const received = verifyPassport(atGateway, context(1, 0));
    wrapPassport({ svid: svid(1), audience: svid(2).id, now, received });
    if (i >= 100) fresh.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  // A later request of the same passport: the link seen before, the link for C still shared.
  const atGateway = wrapPassport({ svid: svid(0), audience: svid(1).id, now, received: origin });
  const toC = context(1, 0);
  let link: SharedLink | undefined;
  const shared: number[] = [];
  for (let i = 0; i < iterations + 100; i++) {
    const start = process.hrtime.bigint();
    const received = verifyPassport(atGateway, toC);
    link = sharedLink(link, received, svid(2).id, svid(1), now);
    if (i >= 100) shared.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  fresh.sort((a, b) => a - b);
  shared.sort((a, b) => a - b);
  return {
    name: 'passport mint+verify per hop',
    mintVerifyP50Us: round(fresh[Math.floor(fresh.length / 2)] ?? 0),
    mintVerifyP99Us: round(fresh[Math.floor(fresh.length * 0.99)] ?? 0),
    sharedP50Us: round(shared[Math.floor(shared.length / 2)] ?? 0),
    headerBytesByDepth: sizes,
  };
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(JSON.stringify(await benchPassport({ quick: process.argv.includes('--quick') }), null, 2));
}
