// `meshauth demo`: a whole mesh in one process on 127.0.0.1 with free ports — the built-in CA, a local
// OpenID issuer, and web → orders → payments, each app behind its own sidecar that bootstraps its SVID from the
// CA with a join token, exactly as in production; in front of web, the edge gateway (browser sign-in at a local
// OpenID provider with a password form). Everything it starts, it stops (close()).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createDemoIssuer, type DemoIssuer } from '../authn/demo-issuer.js';
import { createJoinToken, initCa, loadCaMaterial, startCaServer } from '../ca/index.js';
import { sidecarConfigFromObject } from '../config/index.js';
import { SpiffeId } from '../identity/index.js';
import { createLeafCertificate, exportPrivateKeyPem, generateKeyPair } from '../pki/index.js';
import { type RunningSidecar, startSidecar } from '../sidecar/index.js';
import { createLogger, type Logger, Metrics } from '../telemetry/index.js';
import { type DemoApp, listenOnLoopback, startDemoApp } from './demo-apps.js';
import { type DemoGateway, GATEWAY_ID, startDemoGateway } from './demo-gateway.js';

export const DEMO_TRUST_DOMAIN = 'example.org';
export const DEMO_CLIENT = { clientId: 'shop-frontend', clientSecret: 'demo-secret-not-for-production' };
const SERVICES = ['payments', 'orders', 'web'] as const; // started downstream first: each route needs the next port
export type ServiceName = (typeof SERVICES)[number];

export interface DemoService {
  readonly name: ServiceName;
  readonly id: string;
  readonly app: DemoApp;
  readonly sidecar: RunningSidecar;
  readonly metrics: Metrics;
}

export interface DemoMesh {
  readonly dir: string;
  readonly caUrl: string;
  readonly caMetricsUrl: string;
  readonly issuer: DemoIssuer;
  readonly services: ReadonlyMap<ServiceName, DemoService>;
  /** The public (server-TLS, bearer token) listener of `web`. */
  readonly edgeUrl: string;
  readonly bundleFile: string;
  readonly logDir: string;
  /** The edge gateway in front of web, with its OpenID provider and demo user. */
  readonly gateway: DemoGateway;
  close(): Promise<void>;
}

export function serviceId(name: ServiceName): string {
  return `spiffe://${DEMO_TRUST_DOMAIN}/ns/shop/sa/${name}`;
}

export async function startDemoMesh(options: { readonly readyTimeoutMs?: number } = {}): Promise<DemoMesh> {
  const dir = mkdtempSync(join(tmpdir(), 'meshauth-demo-'));
  const logDir = join(dir, 'logs');
  mkdirSync(logDir);
  const closers: Array<() => Promise<void>> = [async () => rmSync(dir, { recursive: true, force: true })];
  const close = async (): Promise<void> => {
    for (const fn of closers.splice(0).reverse()) await fn().catch(() => undefined);
  };
  try {
    const caDir = join(dir, 'ca');
    await initCa({ dir: caDir, trustDomain: DEMO_TRUST_DOMAIN });
    const ca = await startCaServer({
      dir: caDir,
      listen: '127.0.0.1:0',
      svidTtlMs: 3600_000,
      logger: fileLogger(logDir, 'ca'),
      metrics: new Metrics(),
    });
    closers.push(() => ca.close());

    const issuer = await startIssuer(closers);
    const bundleFile = join(caDir, 'bundle.pem');
    const edge = await writeEdgeCertificate(caDir, dir);
    const services = new Map<ServiceName, DemoService>();
    for (const name of SERVICES) {
      const service = await startService(name, {
        dir,
        caDir,
        caUrl: ca.url,
        bundleFile,
        issuer,
        edge,
        services,
        logDir,
        closers,
      });
      services.set(name, service);
    }
    const web = services.get('web') as DemoService;
    const gateway = await startDemoGateway({
      dir,
      caDir,
      caUrl: ca.url,
      bundleFile,
      edge,
      web: { inboundPort: web.sidecar.inboundPort, id: serviceId('web') },
      logger: fileLogger(logDir, 'gateway'),
      closers,
    });
    await waitReady([...services.values()], options.readyTimeoutMs ?? 20_000, gateway);
    return {
      dir,
      caUrl: ca.url,
      caMetricsUrl: `${ca.url}/metrics`,
      issuer,
      services,
      edgeUrl: `https://127.0.0.1:${web.sidecar.externalPort}`,
      bundleFile,
      logDir,
      gateway,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

async function startIssuer(closers: Array<() => Promise<void>>): Promise<DemoIssuer> {
  const server: Server = createServer();
  const listening = await listenOnLoopback(server);
  closers.push(listening.close);
  const issuer = await createDemoIssuer({
    issuer: `http://127.0.0.1:${listening.port}`,
    audience: 'shop',
    scopes: ['orders:read', 'orders:write'],
    clients: [DEMO_CLIENT],
    accessTokenTtlSeconds: 600,
  });
  server.on('request', issuer.handler);
  return issuer;
}

/** A server certificate for web's public listener, valid for 127.0.0.1 and localhost, from the demo CA. */
async function writeEdgeCertificate(caDir: string, dir: string): Promise<{ cert: string; key: string }> {
  const material = await loadCaMaterial(caDir);
  const keys = await generateKeyPair('p256');
  const leaf = await createLeafCertificate({
    id: SpiffeId.parse(`spiffe://${DEMO_TRUST_DOMAIN}/ns/shop/sa/web-edge`),
    publicKey: keys.publicKey,
    issuer: material.issuer,
    now: new Date(),
    ttlMs: 24 * 3600_000,
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  const cert = join(dir, 'web-edge.crt');
  const key = join(dir, 'web-edge.key');
  writeFileSync(cert, `${leaf.toString('pem')}\n${material.intermediatePem}\n`);
  writeFileSync(key, await exportPrivateKeyPem(keys.privateKey), { mode: 0o600 });
  return { cert, key };
}

interface ServiceContext {
  readonly dir: string;
  readonly caDir: string;
  readonly caUrl: string;
  readonly bundleFile: string;
  readonly issuer: DemoIssuer;
  readonly edge: { cert: string; key: string };
  readonly services: ReadonlyMap<ServiceName, DemoService>;
  readonly logDir: string;
  readonly closers: Array<() => Promise<void>>;
}

const DOWNSTREAM: Record<ServiceName, ServiceName | undefined> = {
  web: 'orders',
  orders: 'payments',
  payments: undefined,
};

async function startService(name: ServiceName, context: ServiceContext): Promise<DemoService> {
  const { dir, closers } = context;
  const id = serviceId(name);
  const tokenFile = join(dir, `${name}.token`);
  writeFileSync(tokenFile, await createJoinToken({ dir: context.caDir, id, ttlMs: 10 * 60_000 }), { mode: 0o600 });
  const policyFile = join(dir, `${name}-policy.yaml`);
  writeFileSync(policyFile, POLICIES[name]);

  const next = DOWNSTREAM[name];
  const nextService = next === undefined ? undefined : context.services.get(next);
  let sidecar: RunningSidecar | undefined;
  const app = await startDemoApp(
    name,
    next === undefined ? undefined : { host: `${next}.shop`, outboundPort: () => sidecar?.outboundPort ?? 0 },
  );
  closers.push(() => app.close());

  const config = sidecarConfigFromObject(
    {
      trustDomain: DEMO_TRUST_DOMAIN,
      ca: { url: context.caUrl, bundle: context.bundleFile, token: tokenFile },
      inbound: {
        listen: '127.0.0.1:0',
        app: `127.0.0.1:${app.port}`,
        policy: policyFile,
        endUser: {
          issuers: [{ issuer: context.issuer.issuer, audiences: ['shop'], algorithms: ['ES256'] }],
          vouchers: [serviceId('web'), GATEWAY_ID],
          claims: ['scope', 'client_id', 'email'],
        },
        ...(name === 'web'
          ? { external: { listen: '127.0.0.1:0', cert: context.edge.cert, key: context.edge.key } }
          : {}),
      },
      outbound: {
        listen: '127.0.0.1:0',
        routes:
          next === undefined || nextService === undefined
            ? {}
            : { [`${next}.shop`]: { address: `127.0.0.1:${nextService.sidecar.inboundPort}`, ids: [serviceId(next)] } },
      },
      admin: { listen: '127.0.0.1:0' },
      drainTimeout: '2s',
    },
    `demo:${name}`,
  );
  const metrics = new Metrics();
  sidecar = await startSidecar(config, { logger: fileLogger(context.logDir, name), metrics });
  const running = sidecar;
  closers.push(() => running.close());
  return { name, id, app, sidecar, metrics };
}

async function waitReady(services: readonly DemoService[], timeoutMs: number, gateway: DemoGateway): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (services.every((s) => s.sidecar.ready()) && gateway.gateway.ready()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const missing: string[] = services.filter((s) => !s.sidecar.ready()).map((s) => s.name);
  if (!gateway.gateway.ready()) missing.push('gateway');
  throw new Error(`sidecars not ready after ${timeoutMs} ms: ${missing.join(', ')} (see the logs)`);
}

function fileLogger(logDir: string, name: string): Logger {
  return createLogger({ name, destination: pino.destination({ dest: join(logDir, `${name}.log`), sync: true }) });
}

const WEB = serviceId('web');
const ORDERS = serviceId('orders');

const POLICIES: Record<ServiceName, string> = {
  web: `apiVersion: meshauth.dev/v1
kind: Policy
metadata: { name: web }
exposeRuleNames: true
rules:
  - name: shop-customers
    action: allow
    to: { paths: ["/shop/*"] }
    when: { user: { scope: ["orders:read"] } }
`,
  orders: `apiVersion: meshauth.dev/v1
kind: Policy
metadata: { name: orders }
exposeRuleNames: true
rules:
  - name: web-reads-orders
    action: allow
    from: { ids: ["${WEB}"] }
    to: { methods: [GET], paths: ["/orders/*"] }
    when: { user: { scope: ["orders:read"] } }
  - name: no-refunds-from-web
    action: deny
    from: { ids: ["${WEB}"] }
    to: { methods: [POST], paths: ["/orders/{id}/refund"] }
`,
  payments: `apiVersion: meshauth.dev/v1
kind: Policy
metadata: { name: payments }
exposeRuleNames: true
rules:
  - name: orders-reads-payments
    action: allow
    from: { ids: ["${ORDERS}"] }
    to: { methods: [GET], paths: ["/payments/*"] }
    when: { user: { scope: ["orders:read"] }, chain: { includes: ["${WEB}"] } }
`,
};
