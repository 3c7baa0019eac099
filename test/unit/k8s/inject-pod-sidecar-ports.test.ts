// The ports the sidecar binds (15001, 15006, 15020) in the pod it joins. Before: a pod whose first declared TCP port
// was one of them got it as the app port (`inbound.app: 127.0.0.1:15006`: the sidecar forwarding inbound requests to
// its own listener), with only a warning, where the same value in the app-port annotation is refused; and an app
// init container (one that runs beside the sidecar, such as a native sidecar of its own) declaring one of them got
// no warning at all, though one of the two could not bind it.
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { injectObject, resolveInjectConfig } from '../../../src/k8s/index.js';

const CONFIG = resolveInjectConfig({ trustDomain: 'example.org' });
type Json = Record<string, unknown>;

function inject(spec: Json): { pod: Json; warnings: readonly string[] } {
  const result = injectObject({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec }, CONFIG);
  expect(result.outcome).toBe('injected');
  return { pod: result.object as Json, warnings: result.warnings };
}

/** The injected sidecar's inbound.app and whether it has a readiness probe (it has one only with an app port). */
function appOf(pod: Json): { app: unknown; readiness: boolean } {
  const sidecar = ((pod.spec as Json).initContainers as Json[])[0] as Json;
  const document = parse(((sidecar.env as Json[])[0] as Json).value as string) as { inbound: { app: unknown } };
  return { app: document.inbound.app, readiness: sidecar.readinessProbe !== undefined };
}

describe('sidecar ports declared by the pod', () => {
  for (const port of [15001, 15006, 15020]) {
    it(`fail/a first declared port ${port} is passed over for the app port; the container is warned about`, () => {
      const { pod, warnings } = inject({
        containers: [{ name: 'app', image: 'a:1', ports: [{ containerPort: port }, { containerPort: 8080 }] }],
      });
      expect(appOf(pod)).toEqual({ app: '127.0.0.1:8080', readiness: true });
      expect(warnings).toEqual([`Pod p: container app uses port ${port}, which the sidecar binds`]);
    });
  }

  it('fail/when the sidecar ports are all the pod declares, it has no app port (default 8080, no readiness probe)', () => {
    const { pod } = inject({ containers: [{ name: 'app', image: 'a:1', ports: [{ containerPort: 15006 }] }] });
    expect(appOf(pod)).toEqual({ app: '127.0.0.1:8080', readiness: false });
  });

  it("fail/an app init container declaring a sidecar port is warned about, a native sidecar's or a plain one's", () => {
    const { warnings } = inject({
      initContainers: [
        { name: 'agent', image: 'x', restartPolicy: 'Always', ports: [{ containerPort: 15020 }] },
        { name: 'setup', image: 'x', ports: [{ containerPort: 15001 }] },
      ],
      containers: [{ name: 'app', image: 'a:1', ports: [{ containerPort: 8080 }] }],
    });
    expect(warnings).toEqual([
      'Pod p: container agent uses port 15020, which the sidecar binds',
      'Pod p: container setup uses port 15001, which the sidecar binds',
    ]);
  });

  it('ok/other ports: no warning, the first TCP port is the app port', () => {
    const { pod, warnings } = inject({
      initContainers: [{ name: 'agent', image: 'x', restartPolicy: 'Always', ports: [{ containerPort: 9000 }] }],
      containers: [
        { name: 'app', image: 'a:1', ports: [{ containerPort: 5353, protocol: 'UDP' }, { containerPort: 3000 }] },
      ],
    });
    expect(appOf(pod)).toEqual({ app: '127.0.0.1:3000', readiness: true });
    expect(warnings).toEqual([]);
  });
});
