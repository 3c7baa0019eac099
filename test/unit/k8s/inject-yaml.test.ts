// Multi-document YAML handling: documents kept byte for byte when untouched, comments kept in changed ones,
// malformed input named by document number and line.
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { isMeshauthError } from '../../../src/errors/index.js';
import { injectObject, injectYaml, resolveInjectConfig, uninjectYaml } from '../../../src/k8s/index.js';

const CONFIG = resolveInjectConfig({ trustDomain: 'example.org' });
const POD = `apiVersion: v1
kind: Pod
metadata:
  name: p # the pod
spec:
  containers:
    # the only container
    - name: app
      image: "app:1"
`;

describe('injectYaml', () => {
  it('ok/untouched documents keep their exact text, odd spacing and comments included', () => {
    const text = `# header\n---\napiVersion:   v1\nkind: ConfigMap   # spaced\nmetadata: {name: c}\n...\n---\n\n---\n${POD}`;
    const out = injectYaml(text, CONFIG).text;
    expect(
      out.startsWith(
        '# header\n---\napiVersion:   v1\nkind: ConfigMap   # spaced\nmetadata: {name: c}\n...\n---\n\n---\n',
      ),
    ).toBe(true);
    expect(uninjectYaml(out).text).toBe(text);
  });

  it('ok/comments and quoting inside an injected document survive', () => {
    const out = injectYaml(POD, CONFIG).text;
    expect(out).toContain('name: p # the pod');
    expect(out).toContain('    # the only container\n    - name: app');
    expect(out).toContain('image: "app:1"');
  });

  it('ok/counts outcomes per document', () => {
    const host = POD.replace('spec:\n', 'spec:\n  hostNetwork: true\n');
    const result = injectYaml(`${POD}---\n${host}---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: n\n`, CONFIG);
    expect(result.counts).toEqual({ injected: 1, 'host-network': 1, unchanged: 1 });
  });

  it('ok/CRLF line endings are read', () => {
    const out = injectYaml(POD.replaceAll('\n', '\r\n'), CONFIG).text;
    expect(out).toContain('meshauth-proxy');
  });

  for (const [name, text, expected] of [
    [
      'second document unclosed flow',
      `${POD}---\napiVersion: v1\nkind: [Pod\n`,
      /^document 2 \(starting at line 10\): not valid YAML at line 13: /,
    ],
    [
      'first document bad indentation',
      'a:\n  b: 1\n c: 2\n',
      /^document 1 \(starting at line 1\): not valid YAML at line 3: /,
    ],
    [
      'after a comment prelude',
      '# c\n---\na: b\n---\nkey: "unterminated\n',
      /^document 2 \(starting at line 4\): not valid YAML at line 6: /,
    ],
  ] as const) {
    it(`fail/${name}: MESHAUTH_ERR_MANIFEST_INVALID naming the document`, () => {
      let caught: unknown;
      try {
        injectYaml(text, CONFIG);
      } catch (error) {
        caught = error;
      }
      expect(isMeshauthError(caught, 'MESHAUTH_ERR_MANIFEST_INVALID')).toBe(true);
      expect((caught as Error).message).toMatch(expected);
    });
  }
});

describe('injectYaml with anchors and aliases', () => {
  it('ok/shared nodes: the output is still exactly the injected objects (the document is rewritten)', () => {
    const text = `apiVersion: v1
kind: Pod
metadata:
  name: p
spec:
  containers:
    - name: a
      image: "a:1"
      ports: [{ name: http, containerPort: 8080 }]
      livenessProbe: &probe
        httpGet: { path: /healthz, port: 8080 }
      env: &env
        - { name: MODE, value: x }
    - name: b
      image: "b:1"
      livenessProbe: *probe
      env: *env
`;
    const out = injectYaml(text, CONFIG).text;
    const objects = parseAllDocuments(out, { version: '1.1' }).map((d) => d.toJS() as unknown);
    const expected = injectObject(parseAllDocuments(text, { version: '1.1' })[0]?.toJS(), CONFIG).object;
    expect(objects).toEqual([expected]);
    expect(uninjectYaml(out).text).not.toContain('meshauth');
  });
});
