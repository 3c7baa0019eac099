// `meshauth inject` (the built CLI) refuses a config.meshauth.dev setting it would silently drop: one on the
// Deployment's own metadata (injection reads the pod template's only: the sidecar would run without its policy and
// allow every authenticated peer), and a misspelt key on the pod template. Exit 2, nothing on stdout.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, meshauth } from '../helpers/meshauth-cli.js';

function deployment(own: string, template: string): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: orders
  namespace: shop
  annotations: {${own}}
spec:
  selector: { matchLabels: { app: orders } }
  template:
    metadata:
      labels: { app: orders }
      annotations: {${template}}
    spec:
      containers: [{ name: app, image: "orders:1", ports: [{ containerPort: 3000 }] }]
`;
}

describe('meshauth inject: config.meshauth.dev annotations it would drop', () => {
  let dir: string;
  let configFile: string;

  beforeAll(() => {
    assertBuilt(['src/k8s', 'src/cli/inject.ts']);
    dir = mkdtempSync(join(tmpdir(), 'meshauth-inject-annotation-'));
    configFile = join(dir, 'inject.yaml');
    writeFileSync(configFile, 'trustDomain: example.org\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const inject = (name: string, text: string) => {
    const file = join(dir, name);
    writeFileSync(file, text);
    return meshauth(['inject', '--config', configFile, '-f', file], { cwd: dir });
  };

  it('fail/the policy on the Deployment itself: exit 2, the object, the annotation and where it belongs', async () => {
    const result = await inject('own.yaml', deployment('config.meshauth.dev/policy: orders-policy', ''));
    expect(result.code, result.stderr).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`${join(dir, 'own.yaml')}: Deployment shop/orders`);
    expect(result.stderr).toContain('config.meshauth.dev/policy');
    expect(result.stderr).toContain('put it on spec.template.metadata.annotations');
    expect(result.stderr).toContain('[MESHAUTH_ERR_MANIFEST_ANNOTATION_MISPLACED]');
  });

  it('fail/a misspelt key on the pod template: exit 2 with the setting it is closest to', async () => {
    const result = await inject('typo.yaml', deployment('', 'config.meshauth.dev/appport: "3000"'));
    expect(result.code, result.stderr).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`${join(dir, 'typo.yaml')}: `);
    expect(result.stderr).toContain('did you mean config.meshauth.dev/app-port?');
    expect(result.stderr).toContain('[MESHAUTH_ERR_MANIFEST_ANNOTATION_UNKNOWN]');
  });

  it('ok/the policy on the pod template: injected, exit 0', async () => {
    const result = await inject('template.yaml', deployment('', 'config.meshauth.dev/policy: orders-policy'));
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('name: orders-policy');
  });
});
