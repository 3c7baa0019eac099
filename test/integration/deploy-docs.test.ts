// docs/kubernetes.md against what it describes: the paths, alerts, ports, annotations and commands it names must
// exist in deploy/, the rules and the injector, so the guide cannot drift from the manifests.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import * as names from '../../src/k8s/index.js';
import { ROOT } from '../helpers/deploy-tools.js';

const DOC = join(ROOT, 'docs/kubernetes.md');
const doc = readFileSync(DOC, 'utf8');

describe('docs/kubernetes.md', () => {
  it('ok/every deploy/ path it names exists', () => {
    // Not `kubectl rollout status deploy/meshauth-ca` and the like: those are Deployments, not paths.
    const kubectlRef = /(?<!(?:status|restart|logs|port-forward|deploy\/[\w-]+) )\bdeploy\/[\w./-]*[\w-]/g;
    const paths = new Set([...doc.matchAll(kubectlRef)].map((m) => m[0]));
    expect(paths.size).toBeGreaterThan(5);
    expect([...paths].filter((p) => !existsSync(join(ROOT, p)))).toEqual([]);
  });

  it('ok/every relative link points at a file of the repository', () => {
    const links = [...doc.matchAll(/\]\(([^)#:]+\.md)\)/g)].map((m) => m[1] ?? '');
    expect(links).toContain('injection.md');
    expect(links.filter((link) => !existsSync(join(dirname(DOC), link)))).toEqual([]);
  });

  it('ok/it lists exactly the alerts of the PrometheusRule', () => {
    const rule = parse(readFileSync(join(ROOT, 'deploy/monitoring/prometheus-rule.yaml'), 'utf8')) as {
      spec: { groups: { rules: { alert?: string }[] }[] };
    };
    const alerts = rule.spec.groups.flatMap((g) => g.rules.map((r) => r.alert)).sort();
    const named = [...new Set([...doc.matchAll(/`(Meshauth[A-Za-z]+)`/g)].map((m) => m[1]))].sort();
    expect(named).toEqual(alerts);
  });

  it('ok/the ports, names and annotations it uses are the injector`s', () => {
    for (const port of [names.PORT_OUTBOUND, names.PORT_INBOUND, names.PORT_ADMIN]) expect(doc).toContain(`${port}`);
    for (const name of [
      names.SIDECAR_NAME,
      names.PORT_INBOUND_NAME,
      names.PORT_ADMIN_NAME,
      names.TRUST_BUNDLE_CONFIGMAP,
      names.ANNOTATION_POLICY,
      names.ANNOTATION_APP_PORT,
      names.ANNOTATION_INJECT,
      names.ENV_CONFIG_YAML,
    ]) {
      expect(doc).toContain(name);
    }
    const annotations = [...doc.matchAll(/`((?:config\.)?meshauth\.dev\/[a-z-]+)/g)].map((m) => m[1]);
    const known: unknown[] = Object.entries(names)
      .filter(([key]) => key.startsWith('ANNOTATION_'))
      .map(([, value]) => value);
    expect(annotations.filter((a) => !known.includes(a ?? ''))).toEqual([]);
  });

  it('ok/the issuer patch index it documents points at the value after --k8s-issuer', () => {
    const match = /args\/(\d+) {3}# the value after --k8s-issuer/.exec(doc);
    const ca = readFileSync(join(ROOT, 'deploy/base/ca.yaml'), 'utf8').split('\n---\n')[0] ?? '';
    const args = (parse(ca) as { spec: { template: { spec: { containers: { args: string[] }[] } } } }).spec.template
      .spec.containers[0]?.args;
    expect(match).not.toBeNull();
    expect(args?.[Number(match?.[1]) - 1]).toBe('--k8s-issuer');
  });
});
