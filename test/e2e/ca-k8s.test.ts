// The CA that runs itself on Kubernetes, with the built CLI: `ca init --k8s-secret` writes valid Kubernetes objects
// (validated with kubernetes-models) and keeps root.key out of them; `ca serve` runs from that Secret mounted the way
// the kubelet mounts it (read-only, symlinked), writes nothing there, bootstraps with projected service-account
// tokens checked by TokenReview (against an HTTPS stand-in API server), refuses join tokens, serves /livez /readyz
// /metrics on --admin-listen; and on an empty Secret prints exactly what to run, once, and exits 2.
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { type FakeApiServer, startFakeApiServer } from '../helpers/fake-kube-apiserver.js';
import { assertBuilt, meshauth, type RunningCli, serveCa } from '../helpers/meshauth-cli.js';
import { pod } from '../helpers/projected-token.js';
import { listing, mountSecret } from '../helpers/secret-mount.js';

let cwd: string;
let api: FakeApiServer;
let initOut: { code: number; stdout: string; stderr: string };
const OUT = () => join(cwd, 'meshauth-ca');
type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string };
  type?: string;
  data: Record<string, string>;
};
let objects: K8sObject[];

beforeAll(async () => {
  assertBuilt();
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-k8s-'));
  api = await startFakeApiServer();
  writeFileSync(join(dirname(api.tokenFile), 'namespace'), 'mesh-system');
  initOut = await meshauth(
    [
      'ca',
      'init',
      '--trust-domain',
      'example.org',
      '--k8s-secret',
      'meshauth-ca',
      '--namespace',
      'meshauth',
      '--bundle-namespace',
      'shop',
      'pay',
    ],
    { cwd },
  );
  objects = parseAllDocuments(readFileSync(join(OUT(), 'secrets.yaml'), 'utf8')).map(
    (doc) => doc.toJSON() as K8sObject,
  );
});
afterAll(async () => {
  await api?.close();
  if (cwd !== undefined) rmSync(cwd, { recursive: true, force: true });
});

const find = (kind: string, name: string, namespace = 'meshauth') =>
  objects.find((o) => o.kind === kind && o.metadata.name === name && o.metadata.namespace === namespace);
const decoded = (o: K8sObject | undefined, key: string) => Buffer.from(o?.data[key] ?? '', 'base64').toString('utf8');

describe('ca init --k8s-secret', () => {
  it('ok/writes valid Secrets and ConfigMaps; root.key only in the directory, 0600', () => {
    expect(initOut.code, initOut.stderr).toBe(0);
    expect(objects.map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`)).toEqual([
      'Secret/meshauth/meshauth-ca',
      'Secret/meshauth/meshauth-webhook-tls',
      'ConfigMap/meshauth/meshauth-trust-bundle',
      'ConfigMap/shop/meshauth-trust-bundle',
      'ConfigMap/pay/meshauth-trust-bundle',
    ]);
    for (const object of objects) {
      // kubernetes-models checks the schema; it allows unknown keys, so the top-level keys are checked here.
      if (object.kind === 'Secret') new Secret(object as never).validate();
      else new ConfigMap(object as never).validate();
      expect(Object.keys(object).every((key) => ['apiVersion', 'kind', 'metadata', 'type', 'data'].includes(key))).toBe(
        true,
      );
    }
    const ca = find('Secret', 'meshauth-ca');
    expect(Object.keys(ca?.data ?? {}).sort()).toEqual([
      'bundle.pem',
      'intermediate.crt',
      'intermediate.key',
      'jwt.key',
      'root.crt',
    ]);
    const rootKey = readFileSync(join(OUT(), 'root.key'), 'utf8');
    const rootKeyBody = rootKey.replace(/-----[A-Z ]+-----|\s/g, '');
    for (const object of objects) {
      for (const key of Object.keys(object.data)) {
        const value = object.kind === 'Secret' ? decoded(object, key) : (object.data[key] as string);
        expect(value.replace(/-----[A-Z ]+-----|\s/g, '')).not.toContain(rootKeyBody);
      }
    }
    expect(statSync(join(OUT(), 'root.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(OUT(), 'secrets.yaml')).mode & 0o777).toBe(0o600);
    expect(find('ConfigMap', 'meshauth-trust-bundle', 'shop')?.data['bundle.pem']).toBe(
      readFileSync(join(OUT(), 'bundle.pem'), 'utf8'),
    );
  });

  it('ok/webhook TLS Secret: a kubernetes.io/tls certificate for meshauth-webhook.meshauth.svc under webhook-ca-bundle.pem', () => {
    const tls = find('Secret', 'meshauth-webhook-tls');
    expect(tls?.type).toBe('kubernetes.io/tls');
    const cert = new X509Certificate(decoded(tls, 'tls.crt'));
    const ca = new X509Certificate(readFileSync(join(OUT(), 'webhook-ca-bundle.pem')));
    expect(decoded(tls, 'ca.crt')).toBe(readFileSync(join(OUT(), 'webhook-ca-bundle.pem'), 'utf8'));
    expect(cert.checkIssued(ca) && cert.verify(ca.publicKey)).toBe(true);
    expect(cert.checkHost('meshauth-webhook.meshauth.svc')).toBe('meshauth-webhook.meshauth.svc');
    expect(decoded(tls, 'tls.key')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });

  it('ok/prints the next steps: kubectl apply, the exact caBundle patch, the next intermediate command', () => {
    const caBundle = readFileSync(join(OUT(), 'webhook-ca-bundle.pem')).toString('base64');
    const applySecrets = `kubectl apply -f ${join('meshauth-ca', 'secrets.yaml')}`;
    expect(initOut.stdout).toContain(applySecrets);
    // secrets.yaml has a ConfigMap in every namespace named: each is created before it is applied.
    for (const namespace of ['meshauth', 'shop', 'pay']) {
      const create = `kubectl create namespace ${namespace} --dry-run=client -o yaml | kubectl apply -f -`;
      expect(initOut.stdout).toContain(create);
      expect(initOut.stdout.indexOf(create)).toBeLessThan(initOut.stdout.indexOf(applySecrets));
    }
    expect(initOut.stdout).toContain(
      `kubectl patch mutatingwebhookconfiguration meshauth-injector --type=json -p '[{"op":"add","path":"/webhooks/0/clientConfig/caBundle","value":"${caBundle}"}]'`,
    );
    expect(initOut.stdout).toContain(
      'meshauth ca rotate --intermediate --dir meshauth-ca --k8s-secret meshauth-ca --namespace meshauth --bundle-namespace shop --bundle-namespace pay',
    );
  });

  it('ok/ca rotate --intermediate --k8s-secret rewrites ca-secret.yaml with the new intermediate', async () => {
    const before = decoded(find('Secret', 'meshauth-ca'), 'intermediate.crt');
    const rotated = await meshauth(
      [
        'ca',
        'rotate',
        '--intermediate',
        '--dir',
        'meshauth-ca',
        '--k8s-secret',
        'meshauth-ca',
        '--namespace',
        'meshauth',
      ],
      { cwd },
    );
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(rotated.stdout).toContain('kubectl apply -f meshauth-ca/ca-secret.yaml');
    const docs = parseAllDocuments(readFileSync(join(OUT(), 'ca-secret.yaml'), 'utf8')).map(
      (d) => d.toJSON() as K8sObject,
    );
    expect(docs.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      'Secret/meshauth-ca',
      'ConfigMap/meshauth-trust-bundle',
    ]);
    new Secret(docs[0] as never).validate();
    const after = decoded(docs[0], 'intermediate.crt');
    expect(after).not.toBe(before);
    expect(after).toBe(readFileSync(join(OUT(), 'intermediate.crt'), 'utf8'));
    objects = [...docs, ...objects.filter((o) => o.metadata.name !== 'meshauth-ca')];
  });
});

describe('ca serve from the mounted Secret (stateless, read-only)', () => {
  let secretDir: string;
  let serve: RunningCli | undefined;
  let url: string;
  let adminUrl: string;
  const serveArgs = () => [
    '--dir',
    secretDir,
    '--admin-listen',
    '127.0.0.1:0',
    '--k8s-issuer',
    api.issuer,
    '--k8s-jwks',
    `${api.url}/openid/v1/jwks`,
    '--k8s-ca-file',
    api.caFile,
    '--k8s-token-file',
    api.tokenFile,
    '--k8s-api-server',
    api.url,
    '--k8s-token-review',
  ];
  async function start(): Promise<void> {
    const started = await serveCa(cwd, { args: serveArgs() });
    ({ serve, url } = started);
    adminUrl = (await started.serve.line(/^meshauth ca admin listening on /))
      .replace('meshauth ca admin listening on ', '')
      .trim();
  }
  beforeAll(async () => {
    secretDir = join(cwd, 'etc-meshauth-ca');
    mountSecret(secretDir, find('Secret', 'meshauth-ca')?.data ?? {});
    writeFileSync(join(cwd, 'bundle.pem'), readFileSync(join(OUT(), 'bundle.pem')));
    await start();
  });
  afterAll(async () => {
    await serve?.stop();
  });

  it('ok/a projected token bootstraps, again after a restart; nothing is written to the Secret dir', async () => {
    const before = listing(secretDir);
    const token = await api.mint({ pod: pod('shop', 'web') });
    const request1 = await meshauth(
      ['cert', 'request', '--ca-url', url, '--bundle', 'bundle.pem', '--token', token, '--out', 'web'],
      { cwd },
    );
    expect(request1.code, request1.stderr).toBe(0);
    expect(request1.stdout).toContain('spiffe://example.org/ns/shop/sa/web');
    expect(await serve?.stop()).toBe(0);
    await start();
    const request2 = await meshauth(
      ['cert', 'request', '--ca-url', url, '--bundle', 'bundle.pem', '--token', token, '--out', 'web2'],
      { cwd },
    );
    expect(request2.code, request2.stderr).toBe(0);
    expect(listing(secretDir)).toEqual(before);
  });

  it('fail/a join token is refused clearly: MESHAUTH_ERR_CA_JOIN_TOKENS_DISABLED', async () => {
    const result = await meshauth(
      ['cert', 'request', '--ca-url', url, '--bundle', 'bundle.pem', '--token', 'A'.repeat(43), '--out', 'x'],
      { cwd },
    );
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('MESHAUTH_ERR_CA_JOIN_TOKENS_DISABLED');
  });

  it('ok/admin listener: /livez /healthz /readyz 200, /metrics has the expiry gauge of root and intermediate', async () => {
    for (const path of ['/livez', '/healthz', '/readyz']) {
      expect((await request(`${adminUrl}${path}`)).statusCode).toBe(200);
    }
    const metrics = await (await request(`${adminUrl}/metrics`)).body.text();
    const intermediate = new X509Certificate(readFileSync(join(secretDir, 'intermediate.crt')));
    const root = new X509Certificate(readFileSync(join(secretDir, 'root.crt')));
    expect(metrics).toContain(
      `meshauth_ca_certificate_expiry_timestamp_seconds{kind="intermediate"} ${Math.floor(Date.parse(intermediate.validTo) / 1000)}`,
    );
    expect(metrics).toContain(
      `meshauth_ca_certificate_expiry_timestamp_seconds{kind="root"} ${Math.floor(Date.parse(root.validTo) / 1000)}`,
    );
    expect(metrics).toMatch(/meshauth_ca_svids_issued_total\{method="k8s_sa_token"\} [1-9]/);
  });

  it('ok/a Secret update (the kubelet swaps ..data) is picked up without a restart', async () => {
    const rotated = await meshauth(
      [
        'ca',
        'rotate',
        '--intermediate',
        '--dir',
        'meshauth-ca',
        '--k8s-secret',
        'meshauth-ca',
        '--namespace',
        'meshauth',
      ],
      { cwd },
    );
    expect(rotated.code, rotated.stderr).toBe(0);
    const secret = parseAllDocuments(readFileSync(join(OUT(), 'ca-secret.yaml'), 'utf8'))[0]?.toJSON() as K8sObject;
    mountSecret(secretDir, secret.data);
    const serial = new X509Certificate(readFileSync(join(OUT(), 'intermediate.crt'))).serialNumber;
    const token = await api.mint({ pod: pod('shop', 'web') });
    let seen = '';
    for (let i = 0; i < 30 && seen !== serial; i++) {
      const result = await meshauth(
        ['cert', 'request', '--ca-url', url, '--bundle', 'bundle.pem', '--token', token, '--out', 'web3'],
        { cwd },
      );
      expect(result.code, result.stderr).toBe(0);
      const chain = readFileSync(join(cwd, 'web3.crt'), 'utf8').split(/(?=-----BEGIN CERTIFICATE-----)/);
      seen = new X509Certificate(chain[1] ?? '').serialNumber;
    }
    expect(seen).toBe(serial);
  });
});

/** `ca serve --k8s-issuer` on the Secret mounted at `dir`, as the CA's Deployment runs it; its exit and output. */
function serveOnSecret(dir: string) {
  const args = ['ca', 'serve', '--dir', dir, '--listen', '127.0.0.1:0'];
  return meshauth([...args, '--k8s-issuer', api.issuer, '--k8s-token-file', api.tokenFile], { cwd });
}

// Each case a directory of its own and a `ca serve` that exits at once: side by side, taking `expect` from the context.
describe.concurrent('ca serve on an empty Secret', () => {
  it.for<[string, (dir: string) => void]>([
    ['fail/empty mounted Secret dir', (dir: string) => mountSecret(dir, {})],
    ['fail/missing dir', (_dir: string) => {}],
  ])('%s → prints the first install once, exit 2', async ([_name, prepare], { expect }) => {
    const dir = join(cwd, `empty-${Math.random().toString(36).slice(2)}`);
    prepare(dir);
    const result = await serveOnSecret(dir);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stdout).toBe('');
    const command =
      'meshauth ca init --trust-domain <your trust domain> --k8s-secret meshauth-ca --namespace mesh-system --bundle-namespace <app namespace> --out meshauth-ca';
    expect(result.stderr.split(command).length - 1).toBe(1);
    // The first install's lines, in its order: each namespace secrets.yaml has a trust-bundle
    // ConfigMap for is created first, and the new webhook certificate's CA goes into the caBundle.
    const lines = result.stderr.split('\n').map((line) => line.trim());
    const expected = [
      command,
      'kubectl create namespace mesh-system --dry-run=client -o yaml | kubectl apply -f -',
      'kubectl create namespace <app namespace> --dry-run=client -o yaml | kubectl apply -f -',
      'kubectl apply -f meshauth-ca/secrets.yaml',
      `kubectl patch mutatingwebhookconfiguration meshauth-injector --type=json -p '[{"op":"add","path":"/webhooks/0/clientConfig/caBundle","value":"<base64 of meshauth-ca/webhook-ca-bundle.pem>"}]'`,
    ];
    const at = lines.indexOf(command);
    expect(lines.slice(at, at + expected.length)).toEqual(expected);
    expect(result.stderr).toContain('[MESHAUTH_ERR_CA_NOT_INITIALIZED]');
  });

  it('fail/a Secret that lacks some CA files → says which and to apply the kept secrets.yaml again, not ca init, exit 2', async ({
    expect,
  }) => {
    const dir = join(cwd, `partial-${Math.random().toString(36).slice(2)}`);
    const { 'intermediate.key': _key, 'bundle.pem': _bundle, ...rest } = find('Secret', 'meshauth-ca')?.data ?? {};
    mountSecret(dir, rest);
    const result = await serveOnSecret(dir);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain('the Secret meshauth-ca lacks intermediate.key, bundle.pem');
    expect(result.stderr).toContain('\n  kubectl apply -f meshauth-ca/secrets.yaml\n');
    expect(result.stderr).not.toContain('meshauth ca init --trust-domain');
    expect(result.stderr).toContain('[MESHAUTH_ERR_CA_NOT_INITIALIZED]');
  });

  it('fail/a directory a `ca init` is still making (its marker) → the CA files’ own message, not the Secret’s, exit 2', async ({
    expect,
  }) => {
    const dir = join(cwd, `making-${Math.random().toString(36).slice(2)}`);
    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(join(dir, 'root.crt'), readFileSync(join(OUT(), 'root.crt')));
    writeFileSync(join(dir, '.ca-init'), '{}\n');
    const result = await serveOnSecret(dir);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain('a `meshauth ca init` there has not finished');
    expect(result.stderr).not.toContain('the Secret meshauth-ca');
  });
});
