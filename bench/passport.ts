// Passport cost per hop: mint (wrap) + verify, as one sidecar does for each request that carries an end user.
// Also reports the header size at each depth. A benchmark, not a test: it asserts nothing.
import { pathToFileURL } from 'node:url';
import { endUserFromClaims } from '../src/authn/end-user.js';
import {
  leafKeyOf,
  mintOriginPassport,
  ownOrigin,
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

  // Per-hop cost (gateway → B → C): B verifies what the gateway sent and wraps it for C.
  const atGateway = wrapPassport({ svid: svid(0), audience: svid(1).id, now, received: origin });
  const iterations = options.quick ? 300 : 3000;
  const samples: number[] = [];
  for (let i = 0; i < iterations + 100; i++) {
    const start = process.hrtime.bigint();
    const received = verifyPassport(atGateway, context(1, 0));
    wrapPassport({ svid: svid(1), audience: svid(2).id, now, received });
    if (i >= 100) samples.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  samples.sort((a, b) => a - b);
  return {
    name: 'passport mint+verify per hop',
    mintVerifyP50Us: round(samples[Math.floor(samples.length / 2)] ?? 0),
    mintVerifyP99Us: round(samples[Math.floor(samples.length * 0.99)] ?? 0),
    headerBytesByDepth: sizes,
  };
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(JSON.stringify(await benchPassport({ quick: process.argv.includes('--quick') }), null, 2));
}
