// Tokens laid out exactly like the kubelet's projected service-account tokens (TokenRequest API, Kubernetes ≥ 1.29):
// header {alg: RS256, kid}; claims aud, exp, iat, iss, jti, nbf, sub = system:serviceaccount:<ns>:<sa>, and
// kubernetes.io = {namespace, node: {name, uid}, pod: {name, uid}, serviceaccount: {name, uid}}.
import { randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';

export interface ClusterSigningKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  /** As the API server publishes it at /openid/v1/jwks: {use: sig, kty: RSA, kid, alg: RS256, n, e}. */
  readonly publicJwk: JWK;
}

export async function newClusterSigningKey(): Promise<ClusterSigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  return {
    kid,
    privateKey,
    publicKey,
    publicJwk: { use: 'sig', kty: 'RSA', kid, alg: 'RS256', n: jwk.n as string, e: jwk.e as string },
  };
}

export interface PodIdentity {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly podName: string;
  readonly podUid: string;
  readonly serviceAccountUid: string;
  readonly node: string;
}

export function pod(
  namespace: string,
  serviceAccount: string,
  podName = `${serviceAccount}-7d4b9c-x2x7q`,
): PodIdentity {
  return {
    namespace,
    serviceAccount,
    podName,
    podUid: randomUUID(),
    serviceAccountUid: randomUUID(),
    node: 'node-1',
  };
}

export interface MintOptions {
  readonly issuer: string;
  readonly key: ClusterSigningKey;
  readonly pod: PodIdentity;
  readonly audience?: readonly string[];
  readonly expirationSeconds?: number;
  /** Seconds added to "now" for iat/nbf/exp (negative: a token minted in the past). */
  readonly shiftSeconds?: number;
  /** Claims replaced or added after the layout above. */
  readonly override?: JWTPayload;
}

export function projectedClaims(options: Omit<MintOptions, 'key'>): JWTPayload {
  const now = Math.floor(Date.now() / 1000) + (options.shiftSeconds ?? 0);
  const { pod: p } = options;
  return {
    aud: [...(options.audience ?? ['meshauth'])],
    exp: now + (options.expirationSeconds ?? 3600),
    iat: now,
    iss: options.issuer,
    jti: randomUUID(),
    'kubernetes.io': {
      namespace: p.namespace,
      node: { name: p.node, uid: '5e0f3f2a-1c7b-4a65-9d3e-2b8c1f0a9e77' },
      pod: { name: p.podName, uid: p.podUid },
      serviceaccount: { name: p.serviceAccount, uid: p.serviceAccountUid },
    },
    nbf: now,
    sub: `system:serviceaccount:${p.namespace}:${p.serviceAccount}`,
    ...options.override,
  };
}

export function mintProjectedToken(options: MintOptions): Promise<string> {
  return new SignJWT(projectedClaims(options))
    .setProtectedHeader({ alg: 'RS256', kid: options.key.kid })
    .sign(options.key.privateKey);
}
