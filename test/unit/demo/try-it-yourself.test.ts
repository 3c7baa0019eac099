// The demo's closing hints: every component whose metrics a user may want is listed with its URL, the edge gateway
// included (its admin port is picked at random, so the hint is the only way to find it without reading logs).
import { describe, expect, it } from 'vitest';
import type { DemoMesh, DemoService } from '../../../src/demo/demo-mesh.js';
import { tryItYourself } from '../../../src/demo/demo-run.js';

function service(name: string, adminPort: number): DemoService {
  return { name, id: `spiffe://example.org/ns/shop/sa/${name}`, sidecar: { adminPort } } as unknown as DemoService;
}

const mesh = {
  dir: '/tmp/meshauth-demo-x',
  caUrl: 'https://127.0.0.1:8443',
  caMetricsUrl: 'https://127.0.0.1:8443/metrics',
  issuer: { tokenEndpoint: 'http://127.0.0.1:9000/token' },
  services: new Map([
    ['web', service('web', 15021)],
    ['orders', service('orders', 15022)],
  ]),
  edgeUrl: 'https://127.0.0.1:9443',
  bundleFile: '/tmp/meshauth-demo-x/ca/bundle.pem',
  logDir: '/tmp/meshauth-demo-x/logs',
  gateway: {
    url: 'https://127.0.0.1:9444',
    providerUrl: 'http://localhost:9001',
    user: { username: 'alice', password: 'pw' },
    gateway: { port: 9444, adminPort: 15029 },
  },
} as unknown as DemoMesh;

describe('meshauth demo: what to try by hand', () => {
  it("ok/the Metrics list names the gateway's admin /metrics beside the sidecars' and the CA's", () => {
    const text = tryItYourself(mesh, false);
    const metrics = text.slice(text.indexOf('Metrics (Prometheus text)'));
    expect(metrics).toMatch(/^ {2}web +http:\/\/127\.0\.0\.1:15021\/metrics$/m);
    expect(metrics).toMatch(/^ {2}gateway +http:\/\/127\.0\.0\.1:15029\/metrics$/m);
    expect(metrics).toMatch(/^ {2}CA +https:\/\/127\.0\.0\.1:8443\/metrics/m);
  });
});
