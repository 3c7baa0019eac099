// Properties over generated pod templates: uninject ∘ inject = identity, inject ∘ inject = inject (objects and YAML
// text), the input is never modified, and the webhook's patch path agrees with the YAML path.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  diffJson,
  injectObject,
  injectYaml,
  resolveInjectConfig,
  uninjectObject,
  uninjectYaml,
} from '../../../src/k8s/index.js';
import { applyJsonPatch, type Operation } from '../../helpers/json-patch.js';

const CONFIG = resolveInjectConfig({ trustDomain: 'example.org', noProxy: ['.corp'] });
const name = fc.constantFrom('app', 'api', 'worker', 'log-shipper', 'x');
const port = fc.oneof(fc.constantFrom(80, 3000, 8080), fc.constantFrom('http', 'metrics', 'missing'));
const probe = fc.oneof(
  fc.record({
    httpGet: fc.record({ path: fc.constantFrom('/healthz', '/ready?deep=1', '/'), port }, { requiredKeys: ['port'] }),
  }),
  fc.record({
    httpGet: fc.record({ port, scheme: fc.constantFrom('HTTP', 'HTTPS') }),
    periodSeconds: fc.integer({ min: 1, max: 30 }),
  }),
  fc.record({ tcpSocket: fc.record({ port }) }),
);
const env = fc.array(
  fc.record({
    name: fc.constantFrom('HTTP_PROXY', 'no_proxy', 'LOG_LEVEL', 'DB_URL'),
    value: fc.string({ maxLength: 6 }),
  }),
  { maxLength: 3 },
);
const container = fc.record(
  {
    name,
    image: fc.constant('img:1'),
    ports: fc.constant([
      { name: 'http', containerPort: 8080 },
      { name: 'metrics', containerPort: 9090 },
    ]),
    env,
    livenessProbe: probe,
    readinessProbe: probe,
    startupProbe: probe,
  },
  { requiredKeys: ['name', 'image'] },
);
const uniqueByName = <T extends { name: string }>(list: T[]) =>
  list.filter((c, i) => list.findIndex((d) => d.name === c.name) === i);
const template = fc.record(
  {
    metadata: fc.record(
      {
        labels: fc.constant({ app: 'orders' }),
        annotations: fc.dictionary(
          fc.constantFrom(
            'team',
            'prometheus.io/scrape',
            'config.meshauth.dev/log-level',
            'config.meshauth.dev/policy',
          ),
          fc.constantFrom('debug', 'orders-policy', 'true'),
          { maxKeys: 3 },
        ),
      },
      { requiredKeys: ['labels'] },
    ),
    spec: fc.record(
      {
        containers: fc.array(container, { minLength: 1, maxLength: 3 }).map(uniqueByName),
        initContainers: fc
          .array(fc.record({ name: fc.constantFrom('migrate', 'wait'), image: fc.constant('i:1') }), { maxLength: 2 })
          .map(uniqueByName),
        volumes: fc
          .array(fc.record({ name: fc.constantFrom('data', 'cache'), emptyDir: fc.constant({}) }), { maxLength: 2 })
          .map(uniqueByName),
      },
      { requiredKeys: ['containers'] },
    ),
  },
  { requiredKeys: ['spec'] },
);
// Annotations that injection cannot use (a log level "true", a policy "debug") are tested elsewhere; keep valid ones.
const validTemplate = template.filter((t) => {
  const a = (t.metadata?.annotations ?? {}) as Record<string, string>;
  const level = a['config.meshauth.dev/log-level'];
  return level === undefined || level === 'debug';
});
const deployment = validTemplate.map((t) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'orders', namespace: 'shop' },
  spec: { selector: { matchLabels: { app: 'orders' } }, template: t },
}));

describe('inject properties', () => {
  it('ok/uninject ∘ inject = identity and inject ∘ inject = inject (objects); the input is untouched', () => {
    fc.assert(
      fc.property(deployment, (d) => {
        const before = structuredClone(d);
        const once = injectObject(d, CONFIG).object;
        expect(d).toEqual(before);
        expect(uninjectObject(once).object).toEqual(d);
        expect(injectObject(once, CONFIG).object).toEqual(once);
      }),
      { numRuns: 300 },
    );
  });

  it('ok/the same holds for YAML text, byte for byte', () => {
    fc.assert(
      fc.property(deployment, (d) => {
        // Written as YAML 1.1, the way Kubernetes reads it (a 1.2 writer leaves `0_` or `.` plain: numbers in 1.1).
        const text = stringify(d, { version: '1.1' });
        const once = injectYaml(text, CONFIG).text;
        expect(injectYaml(once, CONFIG).text).toBe(once);
        expect(uninjectYaml(once).text).toBe(text);
      }),
      { numRuns: 300 },
    );
  });

  it('ok/the webhook path (JSON Patch on the object) and the YAML path give the same object', () => {
    fc.assert(
      fc.property(deployment, (d) => {
        const injected = injectObject(d, CONFIG).object;
        expect(applyJsonPatch(d, diffJson(d, injected) as Operation[])).toEqual(injected);
      }),
      { numRuns: 150 },
    );
  });
});
