// A stand-in for the Kubernetes API server on 127.0.0.1 over real HTTPS with its own cluster CA, speaking the
// exact wire format of what the meshauth CA uses: GET /.well-known/openid-configuration, GET /openid/v1/jwks (bearer
// required, as in clusters without anonymous discovery) and POST /apis/authentication.k8s.io/v1/tokenreviews
// (bearer required; answers 201 with status.authenticated, status.user.{username, uid, groups, extra},
// status.audiences, or status.error; 401/403 as a v1 Status). It authenticates tokens as the API server does:
// signature by its key, issuer, audience intersection, and the bound pod still existing.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jwtVerify } from 'jose';
import {
  type ClusterSigningKey,
  type MintOptions,
  mintProjectedToken,
  newClusterSigningKey,
} from './projected-token.js';
import { TestCa } from './test-ca.js';

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly authorization: string | undefined;
  readonly body: unknown;
}

export interface FakeApiServer {
  readonly url: string;
  readonly issuer: string;
  /** PEM of the cluster CA that signed the server's certificate (what `--k8s-ca-file` points to). */
  readonly caFile: string;
  /** The meshauth CA's own service-account token file (`--k8s-token-file`). */
  readonly tokenFile: string;
  readonly requests: RecordedRequest[];
  /** Keys published at /openid/v1/jwks; the first one signs. */
  keys: ClusterSigningKey[];
  /** Pod UIDs that exist; a token bound to any other pod fails TokenReview. */
  readonly livePods: Set<string>;
  /** Replaces the CA's token (file and what the server accepts). */
  setCaToken(token: string): void;
  /** Answer TokenReview with this status instead (e.g. 500, 403), or undefined for normal answers. */
  reviewStatusOverride: number | undefined;
  /** Rewrites the status of every authenticated TokenReview answer (e.g. drops `audiences`), or undefined. */
  reviewStatusEdit: ((status: Record<string, unknown>) => void) | undefined;
  /** Holds every TokenReview answer until the returned function is called (a CA request waits inside its handler). */
  holdReviews(): () => void;
  mint(options: Omit<MintOptions, 'issuer' | 'key'> & { key?: ClusterSigningKey; issuer?: string }): Promise<string>;
  close(): Promise<void>;
}

/** `issuer`: the service-account issuer, or 'self' for the server's own URL (discovery served by it). */
export async function startFakeApiServer(
  issuerOption: string | 'self' = 'https://kubernetes.default.svc.cluster.local',
): Promise<FakeApiServer> {
  let issuer = issuerOption;
  const dir = mkdtempSync(join(tmpdir(), 'meshauth-kube-'));
  const clusterCa = await TestCa.create('cluster.local');
  const serving = await clusterCa.issue({
    id: clusterCa.idFor('/apiserver'),
    ipAddresses: ['127.0.0.1'],
    dnsNames: ['localhost'],
  });
  const caFile = join(dir, 'ca.crt');
  writeFileSync(caFile, clusterCa.rootPem);
  const tokenFile = join(dir, 'token');
  let caToken = 'ca-token-1';
  writeFileSync(tokenFile, `${caToken}\n`);
  const requests: RecordedRequest[] = [];
  const livePods = new Set<string>();
  const state = {
    keys: [await newClusterSigningKey()],
    reviewStatusOverride: undefined as number | undefined,
    reviewStatusEdit: undefined as ((status: Record<string, unknown>) => void) | undefined,
  };
  let heldReviews: Array<() => void> | undefined;

  const server: Server = createServer({ cert: serving.chainPem, key: serving.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = text === '' ? undefined : JSON.parse(text);
      } catch {
        body = text;
      }
      const path = (req.url ?? '/').split('?', 1)[0] as string;
      requests.push({ method: req.method ?? '', path, authorization: req.headers.authorization, body });
      const send = (status: number, json: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
      };
      const authorized = req.headers.authorization === `Bearer ${caToken}`;
      const statusBody = (code: number, reason: string) => ({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: reason === 'Unauthorized' ? 'Unauthorized' : `forbidden: User "system:anonymous" cannot ${path}`,
        reason,
        code,
      });
      if (req.method === 'GET' && path === '/.well-known/openid-configuration') {
        if (!authorized) return send(403, statusBody(403, 'Forbidden'));
        return send(200, {
          issuer,
          jwks_uri: `${url}/openid/v1/jwks`,
          response_types_supported: ['id_token'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['RS256'],
        });
      }
      if (req.method === 'GET' && path === '/openid/v1/jwks') {
        if (req.headers.authorization === undefined) return send(403, statusBody(403, 'Forbidden'));
        if (!authorized) return send(401, statusBody(401, 'Unauthorized'));
        return send(200, { keys: state.keys.map((key) => key.publicJwk) });
      }
      if (req.method === 'POST' && path === '/apis/authentication.k8s.io/v1/tokenreviews') {
        if (!authorized) return send(401, statusBody(401, 'Unauthorized'));
        if (state.reviewStatusOverride !== undefined) {
          return send(state.reviewStatusOverride, statusBody(state.reviewStatusOverride, 'InternalError'));
        }
        const answer = () => void review(body).then((reply) => send(201, reply));
        if (heldReviews === undefined) answer();
        else heldReviews.push(answer);
        return;
      }
      send(404, statusBody(404, 'NotFound'));
    });
  });

  async function review(body: unknown): Promise<unknown> {
    const spec = (body as { spec?: { token?: string; audiences?: string[] } } | undefined)?.spec ?? {};
    const base = {
      kind: 'TokenReview',
      apiVersion: 'authentication.k8s.io/v1',
      metadata: { creationTimestamp: null },
      spec,
    };
    const fail = (error: string) => ({ ...base, status: { user: {}, error } });
    const token = spec.token ?? '';
    let payload: Record<string, unknown>;
    try {
      const key = state.keys.find(
        (k) => k.kid === JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString()).kid,
      );
      if (key === undefined) return fail('[invalid bearer token, square/go-jose: error in cryptographic primitive]');
      ({ payload } = await jwtVerify(token, key.publicKey, { issuer }));
    } catch (error) {
      return fail(`[invalid bearer token, ${(error as Error).message}]`);
    }
    const tokenAud = (payload.aud as string[] | undefined) ?? [];
    const wanted = spec.audiences ?? ['https://kubernetes.default.svc.cluster.local'];
    const audiences = wanted.filter((aud) => tokenAud.includes(aud));
    if (audiences.length === 0)
      return fail('[invalid bearer token, token audiences ["x"] is invalid for the target audiences]');
    const k8s = payload['kubernetes.io'] as {
      namespace: string;
      pod?: { name: string; uid: string };
      node?: { name: string; uid: string };
      serviceaccount: { name: string; uid: string };
    };
    if (k8s.pod !== undefined && !livePods.has(k8s.pod.uid)) {
      return fail(`[invalid bearer token, pod "${k8s.pod.name}" not found]`);
    }
    const status: Record<string, unknown> = {
      authenticated: true,
      user: {
        username: `system:serviceaccount:${k8s.namespace}:${k8s.serviceaccount.name}`,
        uid: k8s.serviceaccount.uid,
        groups: ['system:serviceaccounts', `system:serviceaccounts:${k8s.namespace}`, 'system:authenticated'],
        extra: {
          'authentication.kubernetes.io/credential-id': [`JTI=${payload.jti as string}`],
          ...(k8s.node === undefined
            ? {}
            : {
                'authentication.kubernetes.io/node-name': [k8s.node.name],
                'authentication.kubernetes.io/node-uid': [k8s.node.uid],
              }),
          ...(k8s.pod === undefined
            ? {}
            : {
                'authentication.kubernetes.io/pod-name': [k8s.pod.name],
                'authentication.kubernetes.io/pod-uid': [k8s.pod.uid],
              }),
        },
      },
      audiences,
    };
    state.reviewStatusEdit?.(status);
    return { ...base, status };
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
  if (issuerOption === 'self') issuer = url;
  return {
    url,
    issuer,
    caFile,
    tokenFile,
    requests,
    livePods,
    get keys() {
      return state.keys;
    },
    set keys(keys: ClusterSigningKey[]) {
      state.keys = keys;
    },
    get reviewStatusOverride() {
      return state.reviewStatusOverride;
    },
    set reviewStatusOverride(status: number | undefined) {
      state.reviewStatusOverride = status;
    },
    get reviewStatusEdit() {
      return state.reviewStatusEdit;
    },
    set reviewStatusEdit(edit: ((status: Record<string, unknown>) => void) | undefined) {
      state.reviewStatusEdit = edit;
    },
    holdReviews() {
      heldReviews ??= [];
      return () => {
        const waiting = heldReviews ?? [];
        heldReviews = undefined;
        for (const answer of waiting) answer();
      };
    },
    setCaToken(token: string) {
      caToken = token;
      writeFileSync(tokenFile, `${token}\n`);
    },
    mint(options) {
      const key = options.key ?? (state.keys[0] as ClusterSigningKey);
      livePods.add(options.pod.podUid);
      return mintProjectedToken({ ...options, key, issuer: options.issuer ?? issuer });
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** What a meshauth CA is given to trust this API server: its JWKS over https, its CA, the bearer, TokenReview on. */
export function reviewingCaOptions(api: FakeApiServer) {
  return {
    issuer: api.issuer,
    jwks: `${api.url}/openid/v1/jwks`,
    caFile: api.caFile,
    tokenFile: api.tokenFile,
    apiServer: api.url,
    tokenReview: true,
  };
}
