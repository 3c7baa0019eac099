// `meshauth inject` (the built CLI) refuses a proxy-cpu or proxy-memory annotation the cluster cannot hold, as it
// refuses one that is no quantity: exit 2, one line naming the object, the annotation and what was expected, nothing
// on stdout. It used to print the sidecar with `cpu: 1e400`, which the API server refused with the whole pod.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, meshauth } from '../helpers/meshauth-cli.js';

function pod(annotation: string): string {
  return `apiVersion: v1
kind: Pod
metadata:
  name: debug-client
  namespace: shop
  annotations: { ${annotation} }
spec:
  containers: [{ name: curl, image: "curlimages/curl:8.10.1" }]
`;
}

describe('meshauth inject: a resource annotation out of range', () => {
  let dir: string;

  beforeAll(() => {
    assertBuilt(['src/k8s', 'src/cli/inject.ts']);
    dir = mkdtempSync(join(tmpdir(), 'meshauth-inject-quantity-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    [
      'config.meshauth.dev/proxy-cpu: "1e400"',
      'config.meshauth.dev/proxy-cpu: expected at most 9223372036854775807m: Kubernetes holds no larger resource quantity',
    ],
    [
      'config.meshauth.dev/proxy-memory: "-1"',
      'config.meshauth.dev/proxy-memory: expected a quantity of 0 or more: a resource amount is never negative',
    ],
  ])('fail/%s: exit 2 and one line naming the annotation', async (annotation, problem) => {
    const file = join(dir, 'pod.yaml');
    writeFileSync(file, pod(annotation));
    const result = await meshauth(['inject', '-f', file], { cwd: dir });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      `meshauth: ${file}: Pod shop/debug-client: ${problem} [MESHAUTH_ERR_MANIFEST_INVALID]\n`,
    );
  });

  it('ok/the same annotation at 500m is injected', async () => {
    const file = join(dir, 'ok.yaml');
    writeFileSync(file, pod('config.meshauth.dev/proxy-cpu: 500m'));
    const result = await meshauth(['inject', '-f', file], { cwd: dir });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('cpu: 500m');
  });
});
