// deploy/ as a user applies it: every kustomization rendered by the real `kubectl kustomize` (default load
// restrictor: no file outside its folder), every object validated offline against the Kubernetes schemas, Pod
// Security "restricted" and meshauth's hardening bar, then the wiring between objects (selectors, ports, Secrets,
// RBAC, the webhook) and the names the CLI and the injector rely on.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compilePolicyText } from '../../src/authz/load-policy-file.js';
import { parseCases, runCases } from '../../src/authz/policy-cases.js';
import { loadSidecarConfig } from '../../src/config/index.js';
import { injectObjects, parseInjectConfig } from '../../src/k8s/index.js';
import { findKustomizations, parseDocuments, ROOT, renderKustomization, toolOrSkip } from '../helpers/deploy-tools.js';
import { podSpecOf, validateAll } from '../helpers/k8s-schema.js';

type Obj = Record<string, unknown>;

const KUBECTL = toolOrSkip('kubectl', ['version', '--client']);
const CLUSTER_SCOPED = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'MutatingWebhookConfiguration',
  'ValidatingWebhookConfiguration',
  'CustomResourceDefinition',
  'PriorityClass',
]);
/** Objects `meshauth ca init --k8s-secret meshauth-ca --namespace meshauth` writes (not in deploy/). */
const FROM_CA_INIT = new Set(['Secret/meshauth/meshauth-ca', 'Secret/meshauth/meshauth-webhook-tls']);

const kustomizations = findKustomizations();
const renderable = kustomizations.filter((k) => k.kind === 'Kustomization');

function rec(value: unknown): Obj {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Obj) : {};
}
function arr(value: unknown): Obj[] {
  return Array.isArray(value) ? value.map(rec) : [];
}
function meta(o: Obj): { name: string; namespace: string | undefined; labels: Obj; annotations: Obj } {
  const m = rec(o.metadata);
  return {
    name: String(m.name),
    namespace: typeof m.namespace === 'string' ? m.namespace : undefined,
    labels: rec(m.labels),
    annotations: rec(m.annotations),
  };
}
function find(docs: readonly Obj[], kind: string, name: string): Obj {
  const found = docs.find((d) => d.kind === kind && meta(d).name === name);
  if (!found) throw new Error(`no ${kind} ${name} in the render`);
  return found;
}
function selects(selector: Obj, labels: Obj): boolean {
  const entries = Object.entries(selector);
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}
function containersOf(o: Obj): Obj[] {
  const pod = podSpecOf(o);
  return pod ? [...arr(pod.spec.initContainers), ...arr(pod.spec.containers)] : [];
}

describe('deploy/: the kustomizations', () => {
  it('ok/deploy holds the base, the example, the fail-closed overlay, monitoring and the fail-closed component', () => {
    expect(kustomizations.map((k) => `${k.kind} ${k.dir}`)).toEqual([
      'Kustomization deploy/base',
      'Component deploy/components/fail-closed',
      'Kustomization deploy/monitoring',
      'Kustomization deploy/overlays/example',
      'Kustomization deploy/overlays/fail-closed',
    ]);
  });

  it('ok/every component is used by a kustomization (so rendering that one covers it)', () => {
    for (const component of kustomizations.filter((k) => k.kind === 'Component')) {
      const users = renderable.filter((k) =>
        (Array.isArray(k.content.components) ? k.content.components : []).some(
          (c) => join(ROOT, k.dir, String(c)) === join(ROOT, component.dir),
        ),
      );
      expect(
        users.map((u) => u.dir),
        component.dir,
      ).not.toEqual([]);
    }
  });
});

describe.skipIf(!KUBECTL)('deploy/: rendered by kubectl kustomize and validated offline', () => {
  const rendered = new Map<string, Obj[]>();
  beforeAll(() => {
    for (const k of renderable) rendered.set(k.dir, parseDocuments(renderKustomization(k.dir), k.dir));
  });
  const docsOf = (dir: string): Obj[] => rendered.get(dir) ?? [];

  it.each(renderable.map((k) => k.dir))(
    'ok/%s renders, and every object passes schema, restricted, hardening',
    (dir) => {
      const docs = docsOf(dir);
      expect(docs.length).toBeGreaterThan(0);
      expect(validateAll(docs, { restricted: true, hardened: true })).toEqual([]);
    },
  );

  it('fail/a kustomization that reads a file outside its folder does not render (the old example overlay bug)', () => {
    const root = mkdtempSync(join(tmpdir(), 'meshauth-kustomize-'));
    try {
      mkdirSync(join(root, 'overlay'));
      writeFileSync(join(root, 'policy.yaml'), 'rules: []\n');
      writeFileSync(
        join(root, 'overlay/kustomization.yaml'),
        'configMapGenerator:\n  - name: p\n    files: [policy.yaml=../policy.yaml]\n',
      );
      expect(() => renderKustomization(join(root, 'overlay'))).toThrow(/security|outside|not in or below/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it.each(renderable.map((k) => k.dir))('ok/%s: every namespaced object has a namespace, no duplicates', (dir) => {
    const seen = new Set<string>();
    for (const doc of docsOf(dir)) {
      const { name, namespace } = meta(doc);
      const key = `${String(doc.kind)}/${namespace ?? ''}/${name}`;
      expect(seen.has(key), `duplicate ${key}`).toBe(false);
      seen.add(key);
      if (CLUSTER_SCOPED.has(String(doc.kind))) expect(namespace, key).toBeUndefined();
      else expect(namespace, `${key} has no namespace`).toBeTypeOf('string');
    }
  });

  it.each(['deploy/base', 'deploy/overlays/example'])(
    'ok/%s: Services, PDBs and NetworkPolicies select pods of a workload; Service ports name container ports',
    (dir) => {
      const docs = docsOf(dir);
      const workloads = docs.filter((d) => podSpecOf(d) !== undefined && d.kind !== 'Pod');
      const podLabels = (w: Obj) => rec(rec(rec(rec(w.spec).template).metadata).labels);
      for (const doc of docs) {
        const where = `${String(doc.kind)} ${meta(doc).name}`;
        const spec = rec(doc.spec);
        const selector =
          doc.kind === 'Service'
            ? rec(spec.selector)
            : doc.kind === 'PodDisruptionBudget'
              ? rec(rec(spec.selector).matchLabels)
              : doc.kind === 'NetworkPolicy'
                ? rec(rec(spec.podSelector).matchLabels)
                : undefined;
        if (selector === undefined) continue;
        const targets = workloads.filter(
          (w) => meta(w).namespace === meta(doc).namespace && selects(selector, podLabels(w)),
        );
        expect(targets.length, `${where} selects no workload`).toBeGreaterThan(0);
        if (doc.kind !== 'Service') continue;
        for (const port of arr(spec.ports)) {
          if (typeof port.targetPort !== 'string') continue;
          // meshauth-in exists once the webhook has injected the pod (the example's pods are not pre-injected).
          if (port.targetPort === 'meshauth-in') continue;
          const names = targets.flatMap((w) => containersOf(w).flatMap((c) => arr(c.ports).map((p) => p.name)));
          expect(names, `${where} targetPort ${port.targetPort}`).toContain(port.targetPort);
        }
      }
    },
  );

  it.each(['deploy/base', 'deploy/overlays/example'])(
    'ok/%s: every Secret, ConfigMap and ServiceAccount a pod uses is rendered or written by ca init',
    (dir) => {
      const docs = docsOf(dir);
      const have = new Set(docs.map((d) => `${String(d.kind)}/${meta(d).namespace}/${meta(d).name}`));
      for (const doc of docs) {
        const pod = podSpecOf(doc);
        if (!pod) continue;
        const ns = meta(doc).namespace;
        const needs: string[] = [`ServiceAccount/${ns}/${String(pod.spec.serviceAccountName ?? 'default')}`];
        for (const volume of arr(pod.spec.volumes)) {
          const secret = rec(volume.secret).secretName;
          const configMap = rec(volume.configMap).name;
          if (typeof secret === 'string') needs.push(`Secret/${ns}/${secret}`);
          if (typeof configMap === 'string') needs.push(`ConfigMap/${ns}/${configMap}`);
        }
        for (const [key, value] of Object.entries(meta(rec(rec(doc.spec).template)).annotations)) {
          if (key === 'config.meshauth.dev/policy') needs.push(`ConfigMap/${ns}/${String(value)}`);
        }
        for (const need of needs) {
          expect(have.has(need) || FROM_CA_INIT.has(need), `${meta(doc).name} needs ${need}`).toBe(true);
        }
      }
    },
  );

  describe('deploy/base', () => {
    const base = () => docsOf('deploy/base');

    it('ok/the CA: 2 stateless replicas, keys from the Secret read-only, no volume claim, spread, probed on admin', () => {
      const ca = find(base(), 'Deployment', 'meshauth-ca');
      const spec = rec(ca.spec);
      expect(spec.replicas).toBe(2);
      const pod = podSpecOf(ca);
      if (!pod) throw new Error('no pod spec');
      expect(base().some((d) => d.kind === 'PersistentVolumeClaim')).toBe(false);
      expect(arr(pod.spec.volumes)).toEqual([
        { name: 'ca', secret: { secretName: 'meshauth-ca', defaultMode: 0o440 } },
      ]);
      const [container] = arr(pod.spec.containers);
      expect(arr(container?.volumeMounts)).toEqual([{ name: 'ca', mountPath: '/etc/meshauth/ca', readOnly: true }]);
      const anti = rec(rec(pod.spec.affinity).podAntiAffinity);
      expect(Object.keys(anti)).not.toEqual([]);
      expect(rec(rec(container?.livenessProbe).httpGet)).toMatchObject({ path: '/livez', port: 'meshauth-admin' });
      expect(rec(rec(container?.readinessProbe).httpGet)).toMatchObject({ path: '/readyz', port: 'meshauth-admin' });
      expect(arr(container?.ports)).toContainEqual({ name: 'meshauth-admin', containerPort: 15020, protocol: 'TCP' });
      // TokenReview needs the CA's own token: mounted by the pod, not by the account for everyone.
      expect(pod.spec.automountServiceAccountToken).toBe(true);
      expect(find(base(), 'ServiceAccount', 'meshauth-ca').automountServiceAccountToken).toBe(false);
      expect(find(base(), 'PodDisruptionBudget', 'meshauth-ca').spec).toMatchObject({ minAvailable: 1 });
    });

    it('ok/the CA runs with the arguments of the contract (issuer URL, admin port, cluster CA, TokenReview)', () => {
      const [container] = containersOf(find(base(), 'Deployment', 'meshauth-ca'));
      const list = (container?.args ?? []) as string[];
      const args = list.join(' ');
      // docs/kubernetes.md patches the issuer by index for managed clusters.
      expect(list[14]).toBe('--k8s-issuer');
      for (const expected of [
        'ca serve --dir /etc/meshauth/ca --listen [::]:8443 --admin-listen [::]:15020',
        '--issuer-url https://meshauth-ca.meshauth.svc:8443',
        '--k8s-issuer https://kubernetes.default.svc.cluster.local',
        '--k8s-jwks https://kubernetes.default.svc/openid/v1/jwks',
        '--k8s-ca-file /var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
        '--k8s-token-review',
        '--san meshauth-ca.meshauth.svc',
      ]) {
        expect(args).toContain(expected);
      }
    });

    it('ok/RBAC: the CA may create TokenReviews and read the issuer JWKS, nothing else; the webhook has no role', () => {
      const roles = base().filter((d) => d.kind === 'ClusterRole' || d.kind === 'Role');
      expect(roles.map((r) => meta(r).name)).toEqual(['meshauth-ca']);
      expect(roles[0]?.rules).toEqual([
        { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
        { nonResourceURLs: ['/.well-known/openid-configuration', '/openid/v1/jwks'], verbs: ['get'] },
      ]);
      const bindings = base().filter((d) => d.kind === 'ClusterRoleBinding' || d.kind === 'RoleBinding');
      expect(bindings.map((b) => ({ roleRef: b.roleRef, subjects: b.subjects }))).toEqual([
        {
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'meshauth-ca' },
          subjects: [{ kind: 'ServiceAccount', name: 'meshauth-ca', namespace: 'meshauth' }],
        },
      ]);
      const webhook = podSpecOf(find(base(), 'Deployment', 'meshauth-webhook'));
      expect(webhook?.spec.automountServiceAccountToken).toBe(false);
    });

    it('ok/NetworkPolicy: the CA API is open to every namespace, its admin port to monitoring only', () => {
      const policy = rec(find(base(), 'NetworkPolicy', 'meshauth-ca').spec);
      expect(policy.policyTypes).toEqual(['Ingress']);
      expect(policy.ingress).toEqual([
        { from: [{ namespaceSelector: {} }], ports: [{ port: 8443, protocol: 'TCP' }] },
        {
          from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }],
          ports: [{ port: 15020, protocol: 'TCP' }],
        },
      ]);
    });

    it('ok/the webhook: the contract names, fails open, v1 reviews, its TLS and inject.yaml mounted', () => {
      const config = find(base(), 'MutatingWebhookConfiguration', 'meshauth-injector');
      const [webhook, ...more] = arr(config.webhooks);
      expect(more).toEqual([]);
      expect(webhook).toMatchObject({
        name: 'inject.meshauth.dev',
        failurePolicy: 'Ignore',
        sideEffects: 'None',
        admissionReviewVersions: ['v1'],
        clientConfig: { service: { name: 'meshauth-webhook', namespace: 'meshauth', path: '/mutate', port: 443 } },
        namespaceSelector: { matchLabels: { 'meshauth.dev/inject': 'enabled' } },
        rules: [
          { operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' },
          {
            operations: ['CREATE', 'UPDATE'],
            apiGroups: [''],
            apiVersions: ['v1'],
            resources: ['services'],
            scope: 'Namespaced',
          },
        ],
      });
      expect(rec(find(base(), 'Service', 'meshauth-webhook').spec).ports).toEqual([
        { name: 'https', port: 443, targetPort: 'https', protocol: 'TCP' },
      ]);
      const [container] = containersOf(find(base(), 'Deployment', 'meshauth-webhook'));
      expect(container?.args).toEqual([
        'webhook',
        '--listen',
        '[::]:8443',
        '--tls-cert',
        '/etc/meshauth/webhook/tls.crt',
        '--tls-key',
        '/etc/meshauth/webhook/tls.key',
        '--config',
        '/etc/meshauth/inject/inject.yaml',
      ]);
      expect(rec(rec(find(base(), 'ConfigMap', 'meshauth-inject').data))['inject.yaml']).toBe(
        readFileSync(join(ROOT, 'deploy/base/inject.yaml'), 'utf8'),
      );
    });

    it('ok/the meshauth namespace enforces Pod Security restricted and is not itself injected', () => {
      expect(meta(find(base(), 'Namespace', 'meshauth')).labels).toMatchObject({
        'pod-security.kubernetes.io/enforce': 'restricted',
      });
      expect(meta(find(base(), 'Namespace', 'meshauth')).labels['meshauth.dev/inject']).toBeUndefined();
    });

    it('ok/inject.yaml is accepted by the injector (strict schema) with the trust domain and image of the manifests', () => {
      const config = parseInjectConfig(readFileSync(join(ROOT, 'deploy/base/inject.yaml'), 'utf8'), 'inject.yaml');
      expect(config).toMatchObject({
        trustDomain: 'example.org',
        image: 'meshauth:0.2.0',
        caUrl: 'https://meshauth-ca.meshauth.svc:8443',
        failClosed: false,
      });
      const [ca] = containersOf(find(base(), 'Deployment', 'meshauth-ca'));
      expect(ca?.image).toBe(config.image);
    });
  });

  it('ok/deploy/overlays/fail-closed differs from the base only in the webhook failurePolicy', () => {
    const strip = (docs: Obj[]) => JSON.stringify(docs).replace('"failurePolicy":"Fail"', '"failurePolicy":"Ignore"');
    expect(strip(docsOf('deploy/overlays/fail-closed'))).toBe(JSON.stringify(docsOf('deploy/base')));
    expect(
      arr(find(docsOf('deploy/overlays/fail-closed'), 'MutatingWebhookConfiguration', 'meshauth-injector').webhooks)[0]
        ?.failurePolicy,
    ).toBe('Fail');
  });

  describe('deploy/overlays/example', () => {
    const example = () => docsOf('deploy/overlays/example');

    it('ok/namespace shop is opted in by label; its pods are left to the webhook (not pre-injected)', () => {
      expect(meta(find(example(), 'Namespace', 'shop')).labels['meshauth.dev/inject']).toBe('enabled');
      for (const name of ['web', 'orders']) {
        const deployment = find(example(), 'Deployment', name);
        expect(containersOf(deployment).map((c) => c.name)).toEqual([name]);
        expect(meta(rec(rec(deployment.spec).template)).annotations).toMatchObject({
          'config.meshauth.dev/policy': `${name}-policy`,
          'config.meshauth.dev/app-port': '8080',
        });
        expect(rec(find(example(), 'Service', name).spec).ports).toEqual([
          { name: 'meshauth-in', port: 15006, targetPort: 'meshauth-in', protocol: 'TCP' },
        ]);
      }
    });

    it('ok/the policies in the ConfigMaps compile, and orders lets web read orders and nothing more', () => {
      for (const name of ['web-policy', 'orders-policy']) {
        const text = rec(find(example(), 'ConfigMap', name).data)['policy.yaml'];
        expect(typeof text).toBe('string');
        compilePolicyText(String(text), name);
      }
      const orders = compilePolicyText(
        String(rec(find(example(), 'ConfigMap', 'orders-policy').data)['policy.yaml']),
        'orders',
      );
      const casesFile = join(ROOT, 'deploy/overlays/example/policies/orders.cases.yaml');
      const results = runCases(orders.policy, parseCases(readFileSync(casesFile, 'utf8'), casesFile), new Date(0));
      expect(results.filter((r) => !r.passed)).toEqual([]);
      expect(results.length).toBeGreaterThanOrEqual(4);
    });

    it('ok/orders accepts end users of one issuer: the ConfigMap its annotation names holds a valid inbound.endUser', () => {
      const deployment = find(example(), 'Deployment', 'orders');
      const name = meta(rec(rec(deployment.spec).template)).annotations['config.meshauth.dev/end-user'];
      expect(name).toBe('orders-end-user');
      const json = String(rec(find(example(), 'ConfigMap', String(name)).data)['end-user.json']);
      // What the kubelet puts into MESHAUTH_INBOUND_END_USER, loaded by the sidecar's own loader over the
      // document injection writes for orders.
      const config = parseInjectConfig(readFileSync(join(ROOT, 'deploy/base/inject.yaml'), 'utf8'), 'inject.yaml');
      const injected = rec(
        injectObjects(example(), config).find(
          (r) => meta(rec(r.object)).name === 'orders' && rec(r.object).kind === 'Deployment',
        )?.object,
      );
      const sidecar = rec(arr(rec(rec(rec(injected.spec).template).spec).initContainers)[0]);
      const env = arr(sidecar.env);
      expect(env.find((e) => e.name === 'MESHAUTH_INBOUND_END_USER')).toEqual({
        name: 'MESHAUTH_INBOUND_END_USER',
        valueFrom: { configMapKeyRef: { name: 'orders-end-user', key: 'end-user.json' } },
      });
      const loaded = loadSidecarConfig(undefined, {
        MESHAUTH_CONFIG_YAML: String(env.find((e) => e.name === 'MESHAUTH_CONFIG_YAML')?.value),
        MESHAUTH_INBOUND_END_USER: json,
      });
      expect(loaded.inbound.endUser?.issuers.map((i) => i.issuer)).toEqual(['https://login.example.org']);
      // The policy's when.user rule uses the scope claim, which the end-user settings pass on.
      expect(String(rec(find(example(), 'ConfigMap', 'orders-policy').data)['policy.yaml'])).toContain('orders:write');
      expect(JSON.parse(json).claims).toContain('scope');
    });

    it('ok/after injection (the injector with deploy/base/inject.yaml) every object still validates, restricted', () => {
      const config = parseInjectConfig(readFileSync(join(ROOT, 'deploy/base/inject.yaml'), 'utf8'), 'inject.yaml');
      const results = injectObjects(example(), config);
      const injected = results.filter((r) => r.outcome === 'injected').map((r) => meta(rec(r.object)).name);
      expect(injected.sort()).toEqual(['orders', 'web']);
      const docs = results.map((r) => rec(r.object));
      expect(validateAll(docs, { restricted: true, hardened: true })).toEqual([]);
      for (const name of ['web', 'orders']) {
        const names = containersOf(find(docs, 'Deployment', name)).map((c) => c.name);
        expect(names).toEqual(['meshauth-proxy', name]);
      }
    });
  });
});
