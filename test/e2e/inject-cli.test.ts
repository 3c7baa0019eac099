// `meshauth inject` / `uninject` as users run them (the built CLI): file and stdin in, golden YAML out, warnings
// on stderr, exit 2 with the document named for broken YAML; kubectl's own YAML reader (kubectl kustomize, offline)
// reads the injected output as the same objects.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { hasTool } from '../helpers/deploy-tools.js';
import { meshauth } from '../helpers/meshauth-cli.js';
import { runCommand } from '../helpers/sidecar-harness.js';

const FIXTURES = new URL('../fixtures/k8s/', import.meta.url).pathname;
const HAVE_KUBECTL = hasTool('kubectl', ['version', '--client']);
if (!HAVE_KUBECTL)
  console.warn('inject-cli: kubectl not on PATH (Debian package kubernetes-client), skipping its check');

describe('meshauth inject / uninject (CLI)', () => {
  let dir: string;
  let configFile: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshauth-inject-'));
    configFile = join(dir, 'inject.yaml');
    writeFileSync(configFile, 'trustDomain: example.org\nnoProxy: [".example.com"]\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('ok/-f FILE writes the golden output; warnings go to stderr', async () => {
    const result = await meshauth(['inject', '-f', join(FIXTURES, 'daemonset.yaml'), '--config', configFile], {
      cwd: dir,
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe(readFileSync(join(FIXTURES, 'daemonset.injected.yaml'), 'utf8'));
    expect(result.stderr).toMatch(
      /^meshauth: warning: DaemonSet observability\/node-agent: container agent sets NO_PROXY/m,
    );
  });

  it('ok/stdin in, stdout out; uninject gives the original back', async () => {
    const source = readFileSync(join(FIXTURES, 'deployment-two-containers.yaml'), 'utf8');
    const injected = await meshauth(['inject', '--config', configFile], { cwd: dir, input: source });
    expect(injected.code, injected.stderr).toBe(0);
    expect(injected.stdout).toBe(readFileSync(join(FIXTURES, 'deployment-two-containers.injected.yaml'), 'utf8'));
    const back = await meshauth(['uninject', '-f', '-'], { cwd: dir, input: injected.stdout });
    expect(back.code, back.stderr).toBe(0);
    expect(back.stdout).toBe(source);
  });

  it('ok/without --config the defaults apply (image meshauth:0.2.0, trust domain cluster.local)', async () => {
    const result = await meshauth(['inject', '-f', join(FIXTURES, 'job.yaml')], { cwd: dir });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('image: meshauth:0.2.0');
    expect(result.stdout).toContain('spiffe://cluster.local/ns/{namespace}/sa/*');
  });

  it('fail/broken YAML: exit 2, the file and document named', async () => {
    const file = join(dir, 'broken.yaml');
    const job = readFileSync(join(FIXTURES, 'job.yaml'), 'utf8');
    writeFileSync(file, `${job}---\napiVersion: v1\nkind: [Pod\n`);
    const separator = job.split('\n').length; // the line of the second document's ---
    const result = await meshauth(['inject', '-f', file], { cwd: dir });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`broken.yaml: document 2 (starting at line ${separator}): not valid YAML at line`);
    expect(result.stderr).toMatch(/\[MESHAUTH_ERR_MANIFEST_INVALID\]\n$/);
  });

  it('fail/an unusable annotation: exit 2 naming the object and the annotation', async () => {
    const result = await meshauth(['inject'], {
      cwd: dir,
      input: readFileSync(join(FIXTURES, 'pod.yaml'), 'utf8').replace('proxy-cpu: 20m', 'proxy-cpu: fast'),
    });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toMatch(
      /stdin: Pod shop\/debug-client: config\.meshauth\.dev\/proxy-cpu: expected a Kubernetes quantity/,
    );
  });

  it('fail/inject.yaml with an unknown key, or missing: exit 2 naming file and key', async () => {
    const bad = join(dir, 'bad-inject.yaml');
    writeFileSync(bad, 'trustDomain: example.org\nimagePullPolicy: sometimes\nsidecarImage: x\n');
    const result = await meshauth(['inject', '-f', join(FIXTURES, 'job.yaml'), '--config', bad], { cwd: dir });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain('bad-inject.yaml: sidecarImage: unknown key');
    expect(result.stderr).toContain('bad-inject.yaml: imagePullPolicy:');
    const missing = await meshauth(['inject', '--config', join(dir, 'nope.yaml')], { cwd: dir, input: '' });
    expect(missing.code, missing.stderr).toBe(2);
    expect(missing.stderr).toMatch(/nope\.yaml: cannot read config file \(ENOENT\)/);
  });

  it('fail/inject.yaml endUser every sidecar would refuse (HS256): exit 2 naming file and key', async () => {
    // It used to inject the pods, whose sidecars then all exited 2 at start (crash loop).
    const bad = join(dir, 'hs256-inject.yaml');
    writeFileSync(
      bad,
      'trustDomain: example.org\nendUser: { issuers: [ { issuer: "https://idp.example.com", audiences: [shop], algorithms: [HS256] } ] }\n',
    );
    const result = await meshauth(['inject', '-f', join(FIXTURES, 'job.yaml'), '--config', bad], { cwd: dir });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`${bad}: endUser.issuers[0].algorithms: algorithm "HS256" is not allowed`);
    expect(result.stderr).toContain('[MESHAUTH_ERR_CONFIG_INVALID]');
  });

  it.skipIf(!HAVE_KUBECTL)('ok/kubectl reads the injected YAML as the same objects', async () => {
    for (const name of ['deployment-two-containers', 'statefulset', 'cronjob', 'daemonset']) {
      const work = mkdtempSync(join(dir, `${name}-`));
      const injected = readFileSync(join(FIXTURES, `${name}.injected.yaml`), 'utf8');
      writeFileSync(join(work, 'injected.yaml'), injected);
      writeFileSync(join(work, 'kustomization.yaml'), 'resources:\n  - injected.yaml\n');
      const rendered = await runCommand('kubectl', ['kustomize', work]);
      expect(rendered.code, rendered.stderr).toBe(0);
      const key = (o: Record<string, unknown>) => `${String(o.kind)}/${String((o.metadata as { name: string }).name)}`;
      const read = (text: string, version: '1.1' | '1.2') =>
        parseAllDocuments(text, { version })
          .map((d) => d.toJS() as Record<string, unknown> | null)
          .filter((o): o is Record<string, unknown> => o !== null)
          .sort((a, b) => key(a).localeCompare(key(b)));
      expect(read(rendered.stdout, '1.2')).toEqual(read(injected, '1.1'));
    }
  });
});
