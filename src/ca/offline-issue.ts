// `ca issue`: signs an SVID directly from the CA directory, without a running server. The key pair is
// generated here, since the workload has none yet; the caller writes key and chain to files.
import { MeshauthError } from '../errors/index.js';
import { refuseCaId, SpiffeId } from '../identity/index.js';
import { createLeafCertificate, exportPrivateKeyPem, generateKeyPair, type KeyType, X509Svid } from '../pki/index.js';
import { loadCaMaterial } from './store.js';

export interface IssueOfflineOptions {
  readonly dir: string;
  readonly id: string | SpiffeId;
  readonly ttlMs: number;
  readonly keyType?: KeyType;
  readonly now?: Date;
}

export async function issueOffline(options: IssueOfflineOptions): Promise<X509Svid> {
  const id = typeof options.id === 'string' ? SpiffeId.parse(options.id) : options.id;
  const material = await loadCaMaterial(options.dir);
  if (!id.memberOf(material.trustDomain) || id.isTrustDomainId) {
    throw new MeshauthError(
      'MESHAUTH_ERR_SPIFFE_ID_INVALID',
      `${id} is not a workload ID of this CA's trust domain ${material.trustDomain} (spiffe://${material.trustDomain}/<path>)`,
      { reason: 'trust_domain' },
    );
  }
  refuseCaId(id, material.trustDomain);
  const keys = await generateKeyPair(options.keyType ?? 'p256');
  const leaf = await createLeafCertificate({
    id,
    publicKey: keys.publicKey,
    issuer: material.issuer,
    now: options.now ?? new Date(),
    ttlMs: options.ttlMs,
  });
  return new X509Svid({
    id,
    certificates: [leaf, material.issuer.certificate],
    privateKeyPem: await exportPrivateKeyPem(keys.privateKey),
    keyType: keys.type,
  });
}
