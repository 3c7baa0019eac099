// injectObject / injectObjects / uninjectObject on single objects: annotations, opt-outs, Service retargeting,
// probe rewriting and the exact undo.
import { describe, expect, it } from 'vitest';
import { loadSidecarConfig } from '../../../src/config/index.js';
import { isMeshauthError } from '../../../src/errors/index.js';
import { injectObject, injectObjects, resolveInjectConfig, uninjectObject } from '../../../src/k8s/index.js';

const CONFIG = resolveInjectConfig({ trustDomain: 'example.org' });
type Json = Record<string, unknown>;

function deployment(options: { annotations?: Json; namespace?: string; containers?: Json[]; meta?: Json } = {}): Json {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'orders', namespace: options.namespace ?? 'shop', ...options.meta },
    spec: {
      selector: { matchLabels: { app: 'orders' } },
      template: {
        metadata: { labels: { app: 'orders' }, ...(options.annotations ? { annotations: options.annotations } : {}) },
        spec: {
          containers: options.containers ?? [
            { name: 'app', image: 'orders:1', ports: [{ name: 'http', containerPort: 3000 }] },
          ],
        },
      },
    },
  };
}

function service(namespace = 'shop', ports: Json[] = [{ name: 'http', port: 80, targetPort: 'http' }]): Json {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'orders', namespace },
    spec: { selector: { app: 'orders' }, ports },
  };
}

const templateOf = (o: unknown) => ((o as Json).spec as Json).template as Json;
const podSpec = (o: unknown) => templateOf(o).spec as Json;
const sidecarOf = (o: unknown) => (podSpec(o).initContainers as Json[])[0] as Json;
const sidecarConfig = (o: unknown) => ((sidecarOf(o).env as Json[])[0] as Json).value as string;

describe('injectObject', () => {
  it('ok/app port from the first TCP containerPort; readiness asks /readyz', () => {
    const out = injectObject(deployment(), CONFIG).object;
    expect(sidecarConfig(out)).toContain('app: 127.0.0.1:3000');
    expect(sidecarOf(out).readinessProbe).toMatchObject({ httpGet: { path: '/readyz' } });
  });

  it('ok/no declared port: no sidecar readiness probe (a worker would never be ready)', () => {
    const out = injectObject(deployment({ containers: [{ name: 'worker', image: 'w:1' }] }), CONFIG).object;
    expect(sidecarOf(out).readinessProbe).toBeUndefined();
    expect(sidecarOf(out).startupProbe).toBeDefined();
  });

  it('ok/annotations: app-port, policy, proxy resources (limit raised with the request), log level', () => {
    const out = injectObject(
      deployment({
        annotations: {
          'config.meshauth.dev/app-port': '9000',
          'config.meshauth.dev/policy': 'orders-policy',
          'config.meshauth.dev/proxy-cpu': '2',
          'config.meshauth.dev/proxy-memory': '64Mi',
          'config.meshauth.dev/log-level': 'debug',
        },
      }),
      CONFIG,
    ).object;
    const sidecar = sidecarOf(out);
    expect(sidecarConfig(out)).toContain('app: 127.0.0.1:9000');
    expect(sidecarConfig(out)).toContain('policy: /etc/meshauth/policy/policy.yaml');
    expect(sidecar.args).toEqual(['sidecar', '--log-level', 'debug']);
    expect(sidecar.resources).toEqual({
      requests: { cpu: '2', memory: '64Mi' },
      limits: { cpu: '2', memory: '256Mi' },
    });
    expect(podSpec(out).volumes).toContainEqual({ name: 'meshauth-policy', configMap: { name: 'orders-policy' } });
    expect(sidecar.volumeMounts).toContainEqual({
      name: 'meshauth-policy',
      mountPath: '/etc/meshauth/policy',
      readOnly: true,
    });
  });

  for (const [name, key, value] of [
    ['app-port not a number', 'config.meshauth.dev/app-port', 'http'],
    ['app-port out of range', 'config.meshauth.dev/app-port', '70000'],
    ['policy not a ConfigMap name', 'config.meshauth.dev/policy', 'Orders_Policy'],
    ['proxy-cpu not a quantity', 'config.meshauth.dev/proxy-cpu', 'lots'],
    ['proxy-memory not a quantity', 'config.meshauth.dev/proxy-memory', '1 GB'],
    ['log-level unknown', 'config.meshauth.dev/log-level', 'loud'],
    ['end-user not a ConfigMap name', 'config.meshauth.dev/end-user', 'login/issuer'],
  ] as const) {
    it(`fail/${name}: MESHAUTH_ERR_MANIFEST_INVALID naming the object and the annotation`, () => {
      let caught: unknown;
      try {
        injectObject(deployment({ annotations: { [key]: value } }), CONFIG);
      } catch (error) {
        caught = error;
      }
      expect(isMeshauthError(caught, 'MESHAUTH_ERR_MANIFEST_INVALID')).toBe(true);
      expect((caught as Error).message).toContain('Deployment shop/orders');
      expect((caught as Error).message).toContain(key);
    });
  }

  const ISSUER = {
    issuer: 'https://login.example.org',
    audiences: ['orders'],
    algorithms: ['ES256'],
  };

  it("ok/inject.yaml endUser becomes every sidecar's inbound.endUser (loaded by the sidecar's own loader)", () => {
    const config = resolveInjectConfig({
      trustDomain: 'example.org',
      endUser: { issuers: [ISSUER], claims: ['scope'] },
    });
    const out = injectObject(deployment(), config).object;
    const loaded = loadSidecarConfig(undefined, { MESHAUTH_CONFIG_YAML: sidecarConfig(out) });
    expect(loaded.inbound.endUser?.issuers.map((i) => i.issuer)).toEqual(['https://login.example.org']);
    expect((sidecarOf(out).env as Json[]).map((e) => e.name)).toEqual(['MESHAUTH_CONFIG_YAML']);
    // Without the block: no end-user section at all.
    expect(sidecarConfig(injectObject(deployment(), CONFIG).object)).not.toContain('endUser');
  });

  it("ok/inject.yaml trustForwardedFrom becomes every sidecar's inbound.trustForwardedFrom; without it, the default", () => {
    const gateway = 'spiffe://example.org/ns/edge/sa/gateway';
    const config = resolveInjectConfig({ trustDomain: 'example.org', trustForwardedFrom: [gateway] });
    const loaded = loadSidecarConfig(undefined, {
      MESHAUTH_CONFIG_YAML: sidecarConfig(injectObject(deployment(), config).object),
    });
    expect([...loaded.inbound.trustForwardedFrom]).toEqual([gateway]);
    expect(sidecarConfig(injectObject(deployment(), CONFIG).object)).not.toContain('trustForwardedFrom');
  });

  it('ok/the end-user annotation: the ConfigMap key end-user.json arrives as MESHAUTH_INBOUND_END_USER and wins', () => {
    const config = resolveInjectConfig({
      trustDomain: 'example.org',
      endUser: { issuers: [{ ...ISSUER, issuer: 'https://mesh-wide.example.org' }] },
    });
    const original = deployment({ annotations: { 'config.meshauth.dev/end-user': 'orders-end-user' } });
    const out = injectObject(original, config).object;
    const env = sidecarOf(out).env as Json[];
    expect(env[1]).toEqual({
      name: 'MESHAUTH_INBOUND_END_USER',
      valueFrom: { configMapKeyRef: { name: 'orders-end-user', key: 'end-user.json' } },
    });
    // The mesh-wide issuers are left out of the document; what the kubelet puts in the variable is what counts.
    expect(sidecarConfig(out)).not.toContain('mesh-wide');
    const loaded = loadSidecarConfig(undefined, {
      MESHAUTH_CONFIG_YAML: sidecarConfig(out),
      MESHAUTH_INBOUND_END_USER: JSON.stringify({ issuers: [ISSUER] }),
    });
    expect(loaded.inbound.endUser?.issuers.map((i) => i.issuer)).toEqual(['https://login.example.org']);
    expect(uninjectObject(out).object).toEqual(original);
  });

  it('ok/NO_PROXY keeps loopback and the cloud metadata servers (plain-HTTP credential endpoints) out of the proxy', () => {
    const config = resolveInjectConfig({ trustDomain: 'example.org', noProxy: ['.corp.example.com'] });
    const app = (podSpec(injectObject(deployment(), config).object).containers as Json[])[0] as Json;
    const value = (app.env as Json[]).find((e) => e.name === 'NO_PROXY')?.value;
    expect(String(value).split(',')).toEqual([
      '127.0.0.1',
      'localhost',
      '::1',
      '169.254.169.254',
      '169.254.170.23',
      'metadata.google.internal',
      '.corp.example.com',
    ]);
  });

  it("ok/the app's own init containers get the proxy variables too (they start after the sidecar); uninject removes them", () => {
    const original = deployment();
    (templateOf(original).spec as Json).initContainers = [{ name: 'migrate', image: 'm:1' }];
    const out = injectObject(original, CONFIG).object;
    const init = podSpec(out).initContainers as Json[];
    expect(init.map((c) => c.name)).toEqual(['meshauth-proxy', 'migrate']);
    expect(((init[1] as Json).env as Json[]).map((e) => e.name)).toEqual([
      'HTTP_PROXY',
      'http_proxy',
      'NO_PROXY',
      'no_proxy',
      'NODE_USE_ENV_PROXY',
    ]);
    expect(uninjectObject(out).object).toEqual(original);
  });

  it('ok/opt-out on the object or on its template; hostNetwork left alone with a warning', () => {
    const onObject = deployment({ meta: { annotations: { 'meshauth.dev/inject': 'false' } } });
    expect(injectObject(onObject, CONFIG)).toMatchObject({ outcome: 'opted-out', object: onObject });
    const onTemplate = deployment({ annotations: { 'meshauth.dev/inject': 'false' } });
    expect(injectObject(onTemplate, CONFIG).outcome).toBe('opted-out');
    const host = deployment();
    podSpec(host).hostNetwork = true;
    const result = injectObject(host, CONFIG);
    expect(result.outcome).toBe('host-network');
    expect(result.object).toBe(host);
    expect(result.warnings.join()).toMatch(/hostNetwork/);
  });

  it('ok/the input is never modified', () => {
    const input = deployment();
    const copy = structuredClone(input);
    injectObject(input, CONFIG);
    expect(input).toEqual(copy);
  });

  it('ok/a new config replaces the sidecar (re-injection is uninject + inject)', () => {
    const once = injectObject(deployment(), CONFIG).object;
    const again = injectObject(
      once,
      resolveInjectConfig({ trustDomain: 'example.org', image: 'registry/meshauth:0.3.0' }),
    ).object;
    expect(podSpec(again).initContainers as Json[]).toHaveLength(1);
    expect(sidecarOf(again).image).toBe('registry/meshauth:0.3.0');
    expect(uninjectObject(again).object).toEqual(deployment());
  });

  it('ok/uninject gives the original probes back', () => {
    const original = deployment({
      containers: [
        {
          name: 'app',
          image: 'a:1',
          ports: [{ name: 'http', containerPort: 3000 }],
          livenessProbe: { httpGet: { port: 'http' } },
        },
      ],
    });
    expect(uninjectObject(injectObject(original, CONFIG).object).object).toEqual(original);
  });

  it('ok/httpGet probes rewritten to the admin port by number; HTTPS, host, headers and exec left alone', () => {
    const out = injectObject(
      deployment({
        containers: [
          {
            name: 'app',
            image: 'a:1',
            ports: [{ name: 'http', containerPort: 3000 }],
            livenessProbe: { httpGet: { path: '/live', port: 'http' } },
            readinessProbe: { httpGet: { path: '/ready', port: 3000, scheme: 'HTTPS' } },
            startupProbe: { exec: { command: ['true'] } },
          },
          {
            name: 'side',
            image: 's:1',
            livenessProbe: { httpGet: { path: '/x', port: 4000, httpHeaders: [{ name: 'Host', value: 'x' }] } },
            readinessProbe: { httpGet: { port: 4000 } },
          },
        ],
      }),
      CONFIG,
    );
    const [app, side] = podSpec(out.object).containers as Json[];
    expect(app?.livenessProbe).toEqual({ httpGet: { path: '/app-health/app/livez', port: 15020 } });
    expect(app?.readinessProbe).toEqual({ httpGet: { path: '/ready', port: 3000, scheme: 'HTTPS' } });
    expect(side?.livenessProbe).toEqual({
      httpGet: { path: '/x', port: 4000, httpHeaders: [{ name: 'Host', value: 'x' }] },
    });
    expect(side?.readinessProbe).toEqual({ httpGet: { path: '/app-health/side/readyz', port: 15020 } });
    expect(sidecarConfig(out.object)).toMatch(/appProbes:\n\s+app:\n\s+livez:\n\s+port: 3000\n\s+path: \/live/);
    expect(sidecarConfig(out.object)).toMatch(/side:\n\s+readyz:\n\s+port: 4000\n\s+path: \//);
    expect(out.warnings.join('\n')).toMatch(/container app readinessProbe .* not rewritten/);
  });

  it('ok/app containers keep their own proxy variables and get none of ours', () => {
    const out = injectObject(
      deployment({
        containers: [{ name: 'app', image: 'a:1', env: [{ name: 'http_proxy', value: 'http://corp:3128' }] }],
      }),
      CONFIG,
    );
    const env = (podSpec(out.object).containers as Json[])[0]?.env as Json[];
    expect(env.map((e) => e.name)).toEqual(['http_proxy']);
    expect(out.warnings.join()).toMatch(/sets HTTP_PROXY itself; no proxy variables added/);
  });

  it('fail/a container already named meshauth-proxy or a reserved volume name', () => {
    const named = deployment({ containers: [{ name: 'meshauth-proxy', image: 'x:1' }] });
    expect(() => injectObject(named, CONFIG)).toThrow(/already named meshauth-proxy/);
    const volume = deployment();
    podSpec(volume).volumes = [{ name: 'meshauth-token', emptyDir: {} }];
    expect(() => injectObject(volume, CONFIG)).toThrow(/reserved/);
  });

  it("fail/the user's own init container named meshauth-proxy (no status annotation) is refused, not replaced", () => {
    // It was taken for an earlier injection's sidecar: replaced by ours without a word, and uninject deleted it.
    const mine = deployment();
    podSpec(mine).initContainers = [{ name: 'meshauth-proxy', image: 'mine:1', command: ['migrate'] }];
    expect(() => injectObject(mine, CONFIG)).toThrow(/initContainers: a container is already named meshauth-proxy/);
    expect(uninjectObject(mine)).toMatchObject({ outcome: 'unchanged', object: mine });
    // An injected template (status annotation beside the sidecar) is still re-injected in place.
    const once = injectObject(deployment(), CONFIG).object;
    expect(injectObject(once, CONFIG).object).toEqual(once);
  });

  it('ok/a container named constructor that keeps its own proxy variables is re-injected and uninjected', () => {
    // The status annotation has no env entry for it; the lookup found Object.prototype.constructor instead.
    const app = deployment({
      containers: [{ name: 'constructor', image: 'a:1', env: [{ name: 'HTTP_PROXY', value: 'http://corp:3128' }] }],
    });
    const once = injectObject(app, CONFIG);
    expect(once.outcome).toBe('injected');
    expect(injectObject(once.object, CONFIG).object).toEqual(once.object);
    expect(uninjectObject(once.object).object).toEqual(app);
  });

  it("ok/uninject does not scan the status annotation's lists once per env entry (the creator writes both)", () => {
    // 80,000 env entries against 80,000 names in the annotation kept the webhook busy ~40 s (a 2 MB review, before
    // the API server's annotation size check). Counting the list scans measures that work without a clock.
    const names = Array.from({ length: 5_000 }, (_, i) => `E${i}`);
    const status = JSON.stringify({ env: { app: names.map((n) => `S${n}`) }, created: names });
    const app = deployment({
      annotations: { 'meshauth.dev/status': status },
      containers: [{ name: 'app', image: 'a:1', env: names.map((name) => ({ name })) }],
    });
    const includes = Array.prototype.includes;
    let longScans = 0;
    Array.prototype.includes = function (this: unknown[], ...args: Parameters<typeof includes>) {
      if (this.length >= 1_000) longScans++;
      return includes.apply(this, args);
    };
    try {
      uninjectObject(app);
    } finally {
      Array.prototype.includes = includes;
    }
    expect(longScans).toBe(0);
  });

  it("fail/an app or init container port named like the sidecar's (meshauth-in, meshauth-admin)", () => {
    // The Service's targetPort meshauth-in would resolve to the app's port (app containers are looked up first).
    for (const name of ['meshauth-in', 'meshauth-admin']) {
      const app = deployment({ containers: [{ name: 'app', image: 'a:1', ports: [{ name, containerPort: 9000 }] }] });
      expect(() => injectObject(app, CONFIG)).toThrow(/container app: port names .* reserved for the sidecar/);
      const init = deployment();
      podSpec(init).initContainers = [{ name: 'setup', image: 's:1', ports: [{ name, containerPort: 9001 }] }];
      expect(() => injectObject(init, CONFIG)).toThrow(/container setup: port names/);
    }
  });

  it('ok/kinds outside the list and unknown apiVersions pass through untouched', () => {
    const old = { ...deployment(), apiVersion: 'extensions/v1beta1' };
    expect(injectObject(old, CONFIG)).toMatchObject({ outcome: 'unchanged', object: old });
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: { a: 'b' } };
    expect(injectObject(cm, CONFIG).object).toBe(cm);
  });

  it('ok/a List is injected item by item', () => {
    const list = { apiVersion: 'v1', kind: 'List', items: [deployment(), service()] };
    const out = injectObject(list, CONFIG).object as { items: Json[] };
    expect(sidecarOf(out.items[0]).name).toBe('meshauth-proxy');
    expect(((out.items[1] as Json).spec as Json).ports).toHaveLength(2);
    expect(uninjectObject(out).object).toEqual(list);
  });
});

describe('Service retargeting', () => {
  it('ok/a Service selecting an injected workload in the same namespace gains meshauth-in; others do not', () => {
    const [, same, other] = injectObjects([deployment(), service('shop'), service('billing')], CONFIG);
    expect(same?.outcome).toBe('retargeted');
    expect(((same as { object: Json }).object.spec as Json).ports).toEqual([
      { name: 'http', port: 80, targetPort: 'http' },
      { name: 'meshauth-in', port: 15006, targetPort: 'meshauth-in', protocol: 'TCP' },
    ]);
    expect(other?.outcome).toBe('unchanged');
  });

  it('ok/a Service of an opted-out workload stays as it is', () => {
    const results = injectObjects([deployment({ annotations: { 'meshauth.dev/inject': 'false' } }), service()], CONFIG);
    expect(results[1]?.outcome).toBe('unchanged');
  });

  it('ok/a single unnamed port gets the name "app" (two ports need names); uninject takes it away again', () => {
    const original = service('shop', [{ port: 80, targetPort: 3000 }]);
    const [, out] = injectObjects([deployment(), original], CONFIG);
    const ports = ((out as { object: Json }).object.spec as Json).ports as Json[];
    expect(ports[0]).toEqual({ port: 80, targetPort: 3000, name: 'app' });
    expect(uninjectObject(out?.object).object).toEqual(original);
  });

  it('ok/a Service that already uses port 15006 is left alone with a warning', () => {
    const clash = service('shop', [{ name: 'grpc', port: 15006, targetPort: 9000 }]);
    const [, out] = injectObjects([deployment(), clash], CONFIG);
    expect(out?.object).toEqual(clash);
    expect(out?.warnings.join()).toMatch(/already has a port 15006/);
  });

  it('ok/a Service that already declares exactly the mesh port is left as it is, without a warning', () => {
    for (const protocol of [{ protocol: 'TCP' }, {}]) {
      const ready = service('shop', [{ name: 'meshauth-in', port: 15006, targetPort: 'meshauth-in', ...protocol }]);
      const [, out] = injectObjects([deployment(), ready], CONFIG);
      expect(out?.object).toEqual(ready);
      expect(out?.warnings).toEqual([]);
    }
    // Same name and number, another target: not the mesh port, so the warning stays.
    const other = service('shop', [{ name: 'meshauth-in', port: 15006, targetPort: 9000 }]);
    expect(injectObjects([deployment(), other], CONFIG)[1]?.warnings.join()).toMatch(/already has a port 15006/);
  });

  it('ok/NodePort and LoadBalancer Services get no mesh port (it would face outside the cluster), with a warning', () => {
    for (const type of ['NodePort', 'LoadBalancer']) {
      const exposed = service();
      (exposed.spec as Json).type = type;
      const [, out] = injectObjects([deployment(), exposed], CONFIG);
      expect(out?.object).toEqual(exposed);
      expect(out?.warnings.join()).toMatch(new RegExp(`type ${type}; the mesh port is not added`));
    }
    const clusterIp = service();
    (clusterIp.spec as Json).type = 'ClusterIP';
    const retargeted = injectObjects([deployment(), clusterIp], CONFIG)[1];
    expect(retargeted?.outcome).toBe('retargeted');
    // Changed to LoadBalancer later (the webhook sees the UPDATE): the mesh port and the status go away.
    const changed = structuredClone(retargeted?.object) as Json;
    (changed.spec as Json).type = 'LoadBalancer';
    const out = injectObjects([deployment(), changed], CONFIG)[1]?.object as Json;
    expect(((out.spec as Json).ports as Json[]).map((p) => p.name)).toEqual(['http']);
    expect(out.metadata).toEqual({ name: 'orders', namespace: 'shop' });
  });

  it('ok/ExternalName and selector-less Services are never retargeted', () => {
    const external = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'x' },
      spec: { type: 'ExternalName', externalName: 'a.b' },
    };
    expect(injectObject(external, CONFIG).outcome).toBe('unchanged');
    const manual = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'y' }, spec: { ports: [{ port: 1 }] } };
    expect(injectObject(manual, CONFIG).outcome).toBe('unchanged');
  });
});
