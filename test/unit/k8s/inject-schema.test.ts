// Every object `meshauth inject` emits for the fixtures, checked offline against the Kubernetes schemas
// (kubernetes-models), unknown keys, the API server's pod rules and what a meshauth sidecar must look like; the
// sidecar's MESHAUTH_CONFIG_YAML is loaded by the sidecar's own config loader.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { loadSidecarConfig } from '../../../src/config/index.js';
import { injectYaml, resolveInjectConfig, uninjectYaml } from '../../../src/k8s/index.js';
import { podSpecOf, validateAll } from '../../helpers/k8s-schema.js';

const DIR = new URL('../../fixtures/k8s/', import.meta.url).pathname;
const CONFIG = resolveInjectConfig({ trustDomain: 'example.org', noProxy: ['.example.com'] });
const INPUTS = readdirSync(DIR).filter((f) => f.endsWith('.yaml') && !f.endsWith('.injected.yaml'));

type Json = Record<string, unknown>;
const objects = (text: string) => parseAllDocuments(text, { version: '1.1' }).map((d) => d.toJS() as unknown);

const problems = (docs: readonly unknown[]) => validateAll(docs);

describe('inject output against the Kubernetes schemas', () => {
  for (const input of INPUTS) {
    const source = readFileSync(join(DIR, input), 'utf8');

    it(`ok/${input}: the original and the injected objects are valid`, () => {
      expect(problems(objects(source))).toEqual([]);
      expect(problems(objects(injectYaml(source, CONFIG).text))).toEqual([]);
      expect(problems(objects(uninjectYaml(injectYaml(source, CONFIG).text).text))).toEqual([]);
    });

    it(`ok/${input}: every injected pod has its sidecar first, native, token ≥ 600 s, startup without the app`, () => {
      for (const object of objects(injectYaml(source, CONFIG).text)) {
        const pod = podSpecOf(object);
        const sidecar = (pod?.spec.initContainers as Json[] | undefined)?.find((c) => c.name === 'meshauth-proxy');
        if (pod === undefined || sidecar === undefined) continue;
        expect((pod.spec.initContainers as Json[])[0]).toBe(sidecar);
        expect(sidecar.restartPolicy).toBe('Always');
        const token = (pod.spec.volumes as Json[]).find((v) => v.name === 'meshauth-token') as Json;
        const projection = ((token.projected as Json).sources as Json[])[0]?.serviceAccountToken as Json;
        expect(projection.audience).toBe('meshauth');
        expect(projection.expirationSeconds).toBeGreaterThanOrEqual(600);
        expect(sidecar.startupProbe).toMatchObject({ httpGet: { path: '/startupz', port: 'meshauth-admin' } });
        expect(sidecar.securityContext).toEqual({
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          runAsNonRoot: true,
          runAsUser: 65532,
          runAsGroup: 65532,
          capabilities: { drop: ['ALL'] },
          seccompProfile: { type: 'RuntimeDefault' },
        });
        const resources = sidecar.resources as { requests: Json; limits: Json };
        expect(Object.keys(resources.requests).sort()).toEqual(['cpu', 'memory']);
        expect(Object.keys(resources.limits).sort()).toEqual(['cpu', 'memory']);
        // The sidecar's own config loader accepts what injection wrote (including admin.appProbes).
        const env = (sidecar.env as Json[]).find((e) => e.name === 'MESHAUTH_CONFIG_YAML') as Json;
        const config = loadSidecarConfig(undefined, { MESHAUTH_CONFIG_YAML: env.value as string });
        expect(config.trustDomain.name).toBe('example.org');
        const appProbes = (parse(env.value as string) as { admin: { appProbes?: Json } }).admin.appProbes ?? {};
        expect(config.admin.appProbes.size).toBe(Object.keys(appProbes).length);
        // Every rewritten app probe points at a container and kind the sidecar was told to forward.
        for (const container of pod.spec.containers as Json[]) {
          for (const field of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
            const path = ((container[field] as Json | undefined)?.httpGet as Json | undefined)?.path;
            const match = typeof path === 'string' ? /^\/app-health\/([^/]+)\/(\w+)$/.exec(path) : null;
            if (match === null) continue;
            expect(match[1]).toBe(container.name);
            expect(config.admin.appProbes.get(match[1] as string)?.[match[2] as 'livez']).toBeDefined();
          }
        }
      }
    });
  }
});
