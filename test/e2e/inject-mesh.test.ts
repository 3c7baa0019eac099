// What injection produces actually forms a mesh: two Deployments go through `meshauth inject`, each sidecar runs
// as the built CLI from nothing but the MESHAUTH_CONFIG_YAML injection wrote (paths and listen addresses moved
// to this machine), bootstraps from a real `meshauth ca serve`, and `web` calls `orders` by its cluster names
// through the injected wildcard routes (DNS from a real dnsmasq), with the identity derived from the name. The
// startup probe passes before the app exists; the rewritten app probe is forwarded by the sidecar.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { type CliProcess, spawnCli, waitForCli } from '../helpers/cli-process.js';
import { type DnsServer, startDnsServer } from '../helpers/dns-server.js';
import { meshauth, type RunningCli, serveCa } from '../helpers/meshauth-cli.js';
import { available, runCommand } from '../helpers/sidecar-harness.js';
import { waitFor } from '../helpers/wait.js';

const READY = available('dnsmasq') && available('curl');
const cleanups: (() => Promise<void> | void)[] = [];
if (!READY) console.warn('inject-mesh: dnsmasq or curl not on PATH, skipping');

const MANIFESTS = `apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: shop }
spec:
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      serviceAccountName: web
      containers:
        - name: web
          image: web:1
          ports: [{ name: http, containerPort: 3000 }]
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: orders, namespace: shop }
spec:
  selector: { matchLabels: { app: orders } }
  template:
    metadata: { labels: { app: orders } }
    spec:
      serviceAccountName: orders
      containers:
        - name: api
          image: orders:1
          ports: [{ name: http, containerPort: 8080 }]
          readinessProbe:
            httpGet: { path: /ready, port: http }
`;

type Json = Record<string, unknown>;

/** The MESHAUTH_CONFIG_YAML of the sidecar in each injected Deployment, by Deployment name. */
function injectedConfigs(text: string): Map<string, Json> {
  const configs = new Map<string, Json>();
  for (const doc of parseAllDocuments(text, { version: '1.1' })) {
    const d = doc.toJS() as Json;
    const spec = ((d.spec as Json).template as Json).spec as { initContainers: Json[] };
    const env = spec.initContainers[0]?.env as { name: string; value: string }[];
    configs.set((d.metadata as Json).name as string, parse(env[0]?.value ?? '') as Json);
  }
  return configs;
}

interface Sidecar {
  readonly cli: CliProcess;
  readonly admin: number;
  readonly outbound: number;
}

/**
 * Runs the sidecar from the injected config alone, its admin and outbound listeners on port 0 (a port picked up
 * front could be taken before the sidecar binds it), and reads the bound ports from its "sidecar listening" line.
 */
async function startSidecar(config: Json): Promise<Sidecar> {
  const cli = spawnCli(['sidecar'], cleanups, { ...process.env, MESHAUTH_CONFIG_YAML: stringify(config) });
  const listening = await waitForCli(
    cli,
    'the sidecar to listen',
    () => cli.logs().find((l) => l.msg === 'sidecar listening'),
    20_000,
  );
  return { cli, admin: listening.admin as number, outbound: listening.outbound as number };
}

async function status(url: string): Promise<number> {
  try {
    return (await fetch(url)).status;
  } catch {
    return 0;
  }
}

/** Polls `check` until it holds; on a timeout the error carries both sidecars' output. */
async function until(check: () => Promise<boolean>, what: string, sidecars: readonly Sidecar[]): Promise<void> {
  try {
    await waitFor(what, check, 15_000);
  } catch (error) {
    throw new Error(`${(error as Error).message}; output:\n${sidecars.map((s) => s.cli.output()).join('\n')}`);
  }
}

function stop(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

describe.skipIf(!READY)('an injected mesh: web → orders by cluster name', () => {
  let dir: string;
  let ca: RunningCli;
  let dns: DnsServer;
  let app: Server;
  const seen: { path: string; xfcc: string | undefined }[] = [];
  let web: Sidecar;
  let orders: Sidecar;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshauth-inject-mesh-'));
    const init = await meshauth(['ca', 'init', '--dir', 'ca', '--trust-domain', 'example.org'], { cwd: dir });
    expect(init.code, init.stderr).toBe(0);
    const { serve, url: caUrl } = await serveCa(dir, { args: ['--dir', 'ca'] });
    ca = serve;
    for (const sa of ['web', 'orders']) {
      const id = `spiffe://example.org/ns/shop/sa/${sa}`;
      const token = await meshauth(['ca', 'token', 'create', '--dir', 'ca', '--id', id], { cwd: dir });
      expect(token.code, token.stderr).toBe(0);
      writeFileSync(join(dir, `${sa}.token`), token.stdout.trim());
    }
    const names = ['orders.shop', 'orders.shop.svc', 'orders.shop.svc.cluster.local'];
    dns = await startDnsServer(Object.fromEntries(names.map((n) => [n, ['127.0.0.3']])));
    app = createServer((req, res) => {
      seen.push({ path: req.url ?? '', xfcc: req.headers['x-forwarded-client-cert'] as string | undefined });
      res.writeHead(req.url === '/ready' ? 204 : 200, { 'content-type': 'text/plain' }).end('orders\n');
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    const appPort = (app.address() as AddressInfo).port;

    writeFileSync(join(dir, 'inject.yaml'), 'trustDomain: example.org\n');
    const injected = await meshauth(['inject', '--config', 'inject.yaml'], { cwd: dir, input: MANIFESTS });
    expect(injected.code, injected.stderr).toBe(0);
    const configs = injectedConfigs(injected.stdout);
    // Only what differs between a pod and this machine changes: file paths, listen addresses, the app's port, DNS.
    const local = (config: Json, ip: string, sa: string, app?: number): Json => {
      const inbound = config.inbound as Json;
      const appProbes = ((config.admin as Json).appProbes ?? undefined) as
        | Record<string, Record<string, Json>>
        | undefined;
      for (const probes of Object.values(appProbes ?? {})) for (const probe of Object.values(probes)) probe.port = app;
      return {
        ...config,
        ca: { url: caUrl, bundle: join(dir, 'ca/bundle.pem'), token: join(dir, `${sa}.token`) },
        inbound: {
          ...inbound,
          listen: `${ip}:15006`,
          app: `127.0.0.1:${app ?? (inbound.app as string).split(':')[1]}`,
        },
        outbound: { ...(config.outbound as Json), dns: { servers: [dns.address] } },
      };
    };
    const webConfig = local(configs.get('web') as Json, '127.0.0.2', 'web');
    const ordersConfig = local(configs.get('orders') as Json, '127.0.0.3', 'orders', appPort);
    const withPortZero = (config: Json) => ({
      ...config,
      outbound: { ...(config.outbound as Json), listen: '127.0.0.1:0' },
      admin: { ...(config.admin as Json), listen: '127.0.0.1:0' },
    });
    [web, orders] = await Promise.all([
      startSidecar(withPortZero(webConfig)),
      startSidecar(withPortZero(ordersConfig)),
    ]);
  });
  afterAll(async () => {
    await Promise.all([stop(web?.cli.child), stop(orders?.cli.child)]);
    await ca?.stop();
    await dns?.close();
    await new Promise<void>((resolve) => (app ? app.close(() => resolve()) : resolve()));
    while (cleanups.length > 0) await cleanups.pop()?.();
    rmSync(dir, { recursive: true, force: true });
  });

  it('ok/the startup probe passes on the SVID alone; readiness waits for the app', async () => {
    const admin = (port: number, path: string) => status(`http://127.0.0.1:${port}${path}`);
    await until(async () => (await admin(web.admin, '/startupz')) === 200, 'web /startupz', [web, orders]);
    // web's app (port 3000) does not exist: the pod would start, and stay unready, instead of deadlocking.
    expect(await admin(web.admin, '/readyz')).toBe(503);
    await until(async () => (await admin(orders.admin, '/readyz')) === 200, 'orders /readyz', [web, orders]);
  });

  it("ok/web reaches orders by every cluster name, and orders sees web's identity", async () => {
    for (const host of ['orders.shop', 'orders.shop.svc', 'orders.shop.svc.cluster.local']) {
      const before = seen.length;
      const result = await runCommand('curl', [
        '-sS',
        '--noproxy', // the test setup sets NO_PROXY=*; an explicit empty list overrides it
        '',
        '-x',
        `http://127.0.0.1:${web.outbound}`,
        `http://${host}/orders/1`,
      ]);
      expect(result.code, result.stderr + web.cli.output()).toBe(0);
      expect(result.stdout).toBe('orders\n');
      const request = seen.slice(before).find((s) => s.path === '/orders/1');
      expect(request?.xfcc).toContain('URI=spiffe://example.org/ns/shop/sa/web');
    }
  });

  it('ok/the rewritten readiness probe of orders is forwarded to its app', async () => {
    const before = seen.length;
    expect(await status(`http://127.0.0.1:${orders.admin}/app-health/api/readyz`)).toBe(204);
    expect(seen.slice(before).map((s) => s.path)).toEqual(['/ready']);
  });

  it("fail/a name in another namespace expects that namespace's identity: refused", async () => {
    await dns.setRecords({
      'orders.shop': ['127.0.0.3'],
      'orders.shop.svc': ['127.0.0.3'],
      'orders.shop.svc.cluster.local': ['127.0.0.3'],
      'orders.billing': ['127.0.0.3'],
    });
    const result = await runCommand('curl', [
      '-sS',
      '-w',
      '\n%{http_code}',
      '--noproxy',
      '',
      '-x',
      `http://127.0.0.1:${web.outbound}`,
      'http://orders.billing/x',
    ]);
    // orders presents spiffe://example.org/ns/shop/sa/orders; a call to orders.billing expects ns/billing.
    expect(result.stdout).toMatch(/"code":"MESHAUTH_ERR_PEER_IDENTITY"[\s\S]*\n502$/);
  });
});
