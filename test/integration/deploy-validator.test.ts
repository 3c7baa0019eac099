// The offline Kubernetes validator (test/helpers/k8s-schema.ts) can fail: each `fail/` case breaks a valid,
// injected-looking Deployment in one way the API server, the kubelet, Pod Security or meshauth's own rules would
// refuse, and must be reported with the place and the reason. Without these, a green deploy test proves nothing.
import { describe, expect, it } from 'vitest';
import { toolOrSkip } from '../helpers/deploy-tools.js';
import { validateAll, validateKubernetesObject } from '../helpers/k8s-schema.js';

type Obj = Record<string, unknown>;

/** A Deployment as injection leaves it: native sidecar first, restricted everywhere, resources set. */
function injectedDeployment(): Obj {
  const restricted = {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    runAsUser: 65532,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
  const resources = { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '128Mi' } };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'orders', namespace: 'shop' },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'orders' } },
      template: {
        metadata: { labels: { app: 'orders' } },
        spec: {
          initContainers: [
            {
              name: 'meshauth-proxy',
              image: 'meshauth:0.2.0',
              restartPolicy: 'Always',
              args: ['sidecar'],
              ports: [
                { name: 'meshauth-in', containerPort: 15006 },
                { name: 'meshauth-admin', containerPort: 15020 },
              ],
              startupProbe: { httpGet: { path: '/startupz', port: 'meshauth-admin' }, periodSeconds: 1 },
              livenessProbe: { httpGet: { path: '/livez', port: 'meshauth-admin' } },
              readinessProbe: { httpGet: { path: '/readyz', port: 'meshauth-admin' } },
              securityContext: restricted,
              resources,
              volumeMounts: [{ name: 'meshauth-token', mountPath: '/var/run/secrets/meshauth/token', readOnly: true }],
            },
          ],
          containers: [
            {
              name: 'app',
              image: 'example/orders:1',
              ports: [{ name: 'http', containerPort: 8080 }],
              readinessProbe: { httpGet: { path: '/app-health/app/readyz', port: 15020 } },
              securityContext: restricted,
              resources,
            },
          ],
          volumes: [
            {
              name: 'meshauth-token',
              projected: {
                sources: [{ serviceAccountToken: { audience: 'meshauth', expirationSeconds: 3600, path: 'token' } }],
              },
            },
          ],
        },
      },
    },
  };
}

/** Applies `change` to a fresh copy's pod spec (`spec.template.spec`) and returns the object. */
function broken(change: (pod: Obj, sidecar: Obj, app: Obj) => void, top?: (o: Obj) => void): Obj {
  const o = injectedDeployment();
  const pod = (o.spec as Obj).template as Obj;
  const spec = pod.spec as Obj;
  const sidecar = (spec.initContainers as Obj[])[0] as Obj;
  const app = (spec.containers as Obj[])[0] as Obj;
  change(spec, sidecar, app);
  top?.(o);
  return o;
}

const ALL = { restricted: true, hardened: true } as const;

describe('the Kubernetes validator', () => {
  it('ok/an injected Deployment that follows every rule has no problems', () => {
    expect(validateKubernetesObject(injectedDeployment(), ALL)).toEqual([]);
  });

  it.each<[string, Obj, string]>([
    [
      'fail/unknown top-level key',
      broken(
        () => {},
        (o) => Object.assign(o, { extra: true }),
      ),
      '.: unknown key "extra"',
    ],
    [
      'fail/misspelt securityContext (silently dropped by the API server)',
      broken((_pod, _sidecar, app) => {
        app.secutiryContext = app.securityContext;
      }),
      'spec.template.spec.containers[0]: unknown key "secutiryContext"',
    ],
    [
      'fail/unknown key deep inside a probe',
      broken((_pod, sidecar) => {
        (sidecar.startupProbe as Obj).httpGet = { path: '/startupz', port: 'meshauth-admin', schema: 'HTTP' };
      }),
      'spec.template.spec.initContainers[0].startupProbe.httpGet: unknown key "schema"',
    ],
    [
      'fail/schema: containerPort is a string',
      broken((_pod, _sidecar, app) => {
        app.ports = [{ name: 'http', containerPort: '8080' }];
      }),
      'spec.template.spec.containers[0].ports[0].containerPort: must be integer',
    ],
    [
      'fail/restricted: no seccompProfile on the app (and none on the pod)',
      broken((_pod, _sidecar, app) => {
        app.securityContext = { ...(app.securityContext as Obj), seccompProfile: undefined };
      }),
      'spec.template.spec.containers[0].securityContext.seccompProfile.type: must be RuntimeDefault or Localhost',
    ],
    [
      'fail/restricted: privilege escalation allowed',
      broken((_pod, sidecar) => {
        sidecar.securityContext = { ...(sidecar.securityContext as Obj), allowPrivilegeEscalation: true };
      }),
      'spec.template.spec.initContainers[0].securityContext.allowPrivilegeEscalation: must be false',
    ],
    [
      'fail/restricted: a capability added',
      broken((_pod, _sidecar, app) => {
        app.securityContext = { ...(app.securityContext as Obj), capabilities: { drop: ['ALL'], add: ['NET_ADMIN'] } };
      }),
      'spec.template.spec.containers[0].securityContext.capabilities.add: "NET_ADMIN"',
    ],
    [
      'fail/restricted: hostPath volume',
      broken((pod) => {
        (pod.volumes as Obj[]).push({ name: 'host', hostPath: { path: '/' } });
      }),
      'spec.template.spec.volumes[1]: volume type "hostPath" is not allowed',
    ],
    [
      'fail/hardening: no resources on the app',
      broken((_pod, _sidecar, app) => {
        delete app.resources;
      }),
      'spec.template.spec.containers[0].resources.limits.memory: missing',
    ],
    [
      'fail/sidecar without restartPolicy: Always (a plain init container would block the app forever)',
      broken((_pod, sidecar) => {
        delete sidecar.restartPolicy;
      }),
      'spec.template.spec.initContainers[0].startupProbe: a plain init container may not have probes',
    ],
    [
      'fail/restartPolicy on a regular container',
      broken((_pod, _sidecar, app) => {
        app.restartPolicy = 'Always';
      }),
      'spec.template.spec.containers[0].restartPolicy: only init containers may set restartPolicy',
    ],
    [
      'fail/sidecar among the regular containers',
      broken((pod, sidecar) => {
        delete sidecar.restartPolicy;
        delete sidecar.startupProbe;
        pod.containers = [sidecar, ...(pod.containers as Obj[])];
        delete pod.initContainers;
      }),
      'spec.template.spec.containers[0]: the meshauth sidecar must be an init container with restartPolicy: Always',
    ],
    [
      'fail/sidecar startup probe that needs the app (/readyz: the app starts only after it passes)',
      broken((_pod, sidecar) => {
        sidecar.startupProbe = { httpGet: { path: '/readyz', port: 'meshauth-admin' } };
      }),
      'spec.template.spec.initContainers[0].startupProbe.httpGet.path: must be /startupz',
    ],
    [
      'fail/sidecar liveness that depends on the app',
      broken((_pod, sidecar) => {
        sidecar.livenessProbe = { httpGet: { path: '/readyz', port: 'meshauth-admin' } };
      }),
      'spec.template.spec.initContainers[0].livenessProbe.httpGet.path: "/readyz" (liveness must not depend on the app)',
    ],
    [
      'fail/projected token shorter than the API minimum of 600 s',
      broken((pod) => {
        (pod.volumes as Obj[])[0] = {
          name: 'meshauth-token',
          projected: { sources: [{ serviceAccountToken: { audience: 'meshauth', expirationSeconds: 300 } }] },
        };
      }),
      'serviceAccountToken.expirationSeconds: 300 is below the API minimum of 600',
    ],
    [
      'fail/no meshauth token for the sidecar',
      broken((pod, sidecar) => {
        pod.volumes = [];
        sidecar.volumeMounts = [];
      }),
      'spec.template.spec.volumes: no projected serviceAccountToken with audience "meshauth"',
    ],
    [
      'fail/app probe on a port name its own container does not declare (the kubelet looks only there)',
      broken((_pod, _sidecar, app) => {
        app.readinessProbe = { httpGet: { path: '/app-health/app/readyz', port: 'meshauth-admin' } };
      }),
      'spec.template.spec.containers[0].readinessProbe.httpGet.port: "meshauth-admin" is not a port name of this container',
    ],
    [
      'fail/volume mount of a volume the pod does not have',
      broken((_pod, _sidecar, app) => {
        app.volumeMounts = [{ name: 'nope', mountPath: '/x' }];
      }),
      'spec.template.spec.containers[0].volumeMounts[0].name: no volume "nope" in the pod',
    ],
    [
      'fail/selector that does not match the pod template',
      broken(
        () => {},
        (o) => {
          (o.spec as Obj).selector = { matchLabels: { app: 'other' } };
        },
      ),
      'spec.selector.matchLabels.app: not a label of the pod template',
    ],
    [
      'fail/port name longer than 15 characters',
      broken((_pod, _sidecar, app) => {
        app.ports = [{ name: 'http-application', containerPort: 8080 }];
      }),
      'is not an IANA_SVC_NAME',
    ],
  ])('%s', (_name, object, expected) => {
    const problems = validateKubernetesObject(object, ALL);
    expect(
      problems.some((p) => p.includes(expected)),
      problems.join('\n'),
    ).toBe(true);
  });

  it('fail/kinds without a schema are reported, not passed', () => {
    expect(validateKubernetesObject({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } })).toEqual(
      ['.: no Kubernetes schema for example.com/v1 Widget (unknown apiVersion or kind)'],
    );
  });

  it.each<[string, Obj, string]>([
    [
      'fail/webhook without sideEffects None and with two client targets',
      {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'MutatingWebhookConfiguration',
        metadata: { name: 'x' },
        webhooks: [
          {
            name: 'inject.meshauth.dev',
            admissionReviewVersions: ['v1'],
            sideEffects: 'Some',
            clientConfig: { url: 'https://x', service: { name: 's', namespace: 'n' } },
          },
        ],
      },
      'webhooks[0].clientConfig: set exactly one of url and service',
    ],
    [
      'fail/PodDisruptionBudget with both minAvailable and maxUnavailable',
      {
        apiVersion: 'policy/v1',
        kind: 'PodDisruptionBudget',
        metadata: { name: 'p' },
        spec: { minAvailable: 1, maxUnavailable: 1, selector: { matchLabels: { a: 'b' } } },
      },
      'spec: set exactly one of minAvailable and maxUnavailable',
    ],
    [
      'fail/PodMonitor with an unknown key',
      {
        apiVersion: 'monitoring.coreos.com/v1',
        kind: 'PodMonitor',
        metadata: { name: 'm' },
        spec: { selector: {}, podMetricsEndpoints: [{ port: 'meshauth-admin', paht: '/metrics' }] },
      },
      'spec.podMetricsEndpoints.0: Unrecognized key: "paht"',
    ],
    [
      'fail/PrometheusRule alert without expr',
      {
        apiVersion: 'monitoring.coreos.com/v1',
        kind: 'PrometheusRule',
        metadata: { name: 'r' },
        spec: { groups: [{ name: 'g', rules: [{ alert: 'A' }] }] },
      },
      'spec.groups.0.rules.0',
    ],
  ])('%s', (_name, object, expected) => {
    const problems = validateKubernetesObject(object);
    expect(
      problems.some((p) => p.includes(expected)),
      problems.join('\n'),
    ).toBe(true);
  });

  it('ok/a StatefulSet mounts its volumeClaimTemplates (the controller adds them as pod volumes); fail/a name that is neither', () => {
    const statefulSet = (mount: string): Obj => {
      const o = broken((_pod, _sidecar, app) => {
        app.volumeMounts = [{ name: mount, mountPath: '/data' }];
      });
      o.kind = 'StatefulSet';
      Object.assign(o.spec as Obj, {
        serviceName: 'orders',
        volumeClaimTemplates: [
          {
            metadata: { name: 'data' },
            spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
          },
        ],
      });
      return o;
    };
    expect(validateKubernetesObject(statefulSet('data'), ALL)).toEqual([]);
    expect(validateKubernetesObject(statefulSet('date'), ALL)).toEqual([
      'spec.template.spec.containers[0].volumeMounts[0].name: no volume "date" in the pod',
    ]);
  });

  it('ok/RBAC names may contain colons; other kinds may not', () => {
    const role = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'meshauth:ca' } };
    expect(validateKubernetesObject(role)).toEqual([]);
    const map = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'meshauth:ca' } };
    expect(validateKubernetesObject(map)).toEqual(['metadata.name: "meshauth:ca" is not a valid ConfigMap name']);
  });

  it('ok/validateAll names the document, kind, namespace and name of each problem', () => {
    const bad = broken((_pod, _sidecar, app) => {
      app.bogus = 1;
    });
    expect(validateAll([null, bad])).toEqual([
      expect.stringMatching(
        /^\[1\] Deployment shop\/orders: spec\.template\.spec\.containers\[0\]: unknown key "bogus"/,
      ),
    ]);
  });
});

describe('missing tools', () => {
  it('fail/in CI a missing kubectl or promtool fails the suite instead of skipping it', () => {
    expect(() => toolOrSkip('meshauth-no-such-tool', ['--version'], 'true')).toThrow(/required in CI/);
  });

  it('ok/outside CI a missing tool skips (with a warning)', () => {
    expect(toolOrSkip('meshauth-no-such-tool', ['--version'], '')).toBe(false);
  });
});
