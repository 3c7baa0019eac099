// The gateway row: a browser request with a valid session cookie through the edge gateway (TLS, cookie opened,
// origin passport + link minted, mTLS with the gateway SVID) to the web sidecar (passport verified) and its app.
// The gateway and the sidecar each run in their own process (as the CLI runs them, SVIDs injected); the load is
// a closed loop of HTTPS keep-alive connections from this process. CPU µs per request is read from
// /proc/<pid>/stat of each around the measured window. Standalone: `node dist/bench/gateway.js [--quick]`.
// A benchmark, not a test: it asserts nothing.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Pool } from 'undici';
import { CredentialHolder } from '../src/agent/credential-holder.js';
import { sidecarConfigFromObject } from '../src/config/index.js';
import { gatewayConfigFromObject, startGateway } from '../src/gateway/index.js';
import { SessionCodec } from '../src/gateway/session.js';
import { loadKeyRing } from '../src/gateway/session-keys.js';
import { SpiffeId, TrustDomain } from '../src/identity/index.js';
import { TrustBundle, X509Svid } from '../src/pki/index.js';
import { startSidecar } from '../src/sidecar/index.js';
import { Metrics, silentLogger } from '../src/telemetry/index.js';
import { startApp } from './app.js';
import { BENCH_TRUST_DOMAIN, createBenchPki, type PemFiles } from './bench-pki.js';
import { firstJsonLine, spawnChild } from './children.js';
import { imageNodeFlags } from './image-node-flags.js';
import { cpuTimeUs, percentile } from './load.js';
import { SIDECAR_NODE_FLAGS } from './meshauth-pair.js';

export interface GatewayBenchResult {
  readonly name: string;
  readonly requests: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly cpuUsPerReq: { readonly gateway: number; readonly sidecar: number };
}

interface ChildSpec {
  readonly role: 'gateway' | 'sidecar';
  readonly dir: string;
  readonly files: PemFiles;
  readonly id: string;
  readonly caFile: string;
  readonly appPort?: number;
  readonly peerPort?: number;
  readonly peerId?: string;
  readonly voucher?: string;
  readonly serverFiles?: PemFiles;
  readonly sessionKey?: string;
}

const ENTRY = fileURLToPath(import.meta.url);
const ISSUER = 'http://127.0.0.1:9'; // never contacted: the session is valid for the whole run

/**
 * `node`: run the gateway and its sidecar on that binary (MESHAUTH_BENCH_NODE, the image's runtime) instead of this
 * process's; `label` is added to the row's name.
 */
export async function benchGateway(options: {
  quick: boolean;
  node?: string;
  label?: string;
}): Promise<GatewayBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'meshauth-bench-gw-'));
  const app = await startApp();
  const children: { stop(): Promise<void> }[] = [];
  try {
    const pki = await createBenchPki(dir);
    const sessionKey = join(dir, 'session.key');
    writeFileSync(sessionKey, 'bench-session-key-0123456789-abcdefghijklmnop', { mode: 0o600 });
    const spawn = async (spec: ChildSpec) => {
      // As the pods run them: the sidecar with the meshauth pair's flags (the image's and its pod's heap bound), the
      // gateway with the image's (it has no manifest, so no memory limit to derive a bound from).
      const flags = spec.role === 'sidecar' ? SIDECAR_NODE_FLAGS : imageNodeFlags();
      const child = spawnChild(`bench-${spec.role}`, options.node ?? process.execPath, [
        ...flags,
        ENTRY,
        '--child',
        JSON.stringify(spec),
      ]);
      children.push(child);
      return { pid: child.pid, ready: await firstJsonLine<{ port: number }>(child, 15_000) };
    };
    const sidecar = await spawn({
      role: 'sidecar',
      dir,
      files: pki.serverFiles,
      id: pki.server.id.toString(),
      caFile: pki.caFile,
      appPort: app.port,
      voucher: pki.client.id.toString(),
    });
    const gateway = await spawn({
      role: 'gateway',
      dir,
      files: pki.clientFiles,
      id: pki.client.id.toString(),
      caFile: pki.caFile,
      peerPort: sidecar.ready.port,
      peerId: pki.server.id.toString(),
      serverFiles: pki.serverFiles,
      sessionKey,
    });

    const now = Math.floor(Date.now() / 1000);
    const codec = new SessionCodec({
      ring: () => loadKeyRing([sessionKey], 'bench'),
      cookieName: '__Host-meshauth',
      idleTimeoutMs: 3_600_000,
      absoluteTimeoutMs: 3_600_000,
      signedInBy: `${ISSUER} bench`, // the gateway's oidc.issuer and clientId below
      maxCookieBytes: 12_288, // three quarters of the default limits.maxHeaderBytes, as the gateway allows
    });
    const cookie = (
      codec.write(
        {
          sid: 'bench-session',
          claims: { sub: 'alice', iss: ISSUER, scope: 'openid orders:read', email: 'alice@example.org' },
          createdAt: now,
          seenAt: now + 3_000, // never re-stamped during the run: no Set-Cookie on the measured path
          accessExpiresAt: now + 3_600,
        },
        new Map(),
      )[0] as string
    ).split(';')[0] as string;
    const pool = new Pool(`https://127.0.0.1:${gateway.ready.port}`, {
      connections: 16,
      connect: { ca: pki.rootPem },
      keepAliveTimeout: 60_000,
    });
    const headers = { cookie, accept: 'text/html', 'sec-fetch-mode': 'navigate' };
    const latencies: number[] = [];
    let errors = 0;
    let measuring = false;
    let stop = false;
    const loop = async () => {
      while (!stop) {
        const started = performance.now();
        try {
          const response = await pool.request({ path: '/orders/1', method: 'GET', headers });
          await response.body.dump();
          if (response.statusCode !== 200) errors++;
          else if (measuring) latencies.push(performance.now() - started);
        } catch {
          errors++;
        }
      }
    };
    const loops = Array.from({ length: 16 }, loop);
    await new Promise((r) => setTimeout(r, 1_000)); // warm-up
    const before = [cpuTimeUs(gateway.pid), cpuTimeUs(sidecar.pid)];
    const windowStart = performance.now();
    measuring = true;
    errors = 0;
    await new Promise((r) => setTimeout(r, options.quick ? 3_000 : 10_000));
    measuring = false;
    const seconds = (performance.now() - windowStart) / 1000;
    const after = [cpuTimeUs(gateway.pid), cpuTimeUs(sidecar.pid)];
    const requests = latencies.length;
    stop = true;
    await Promise.all(loops);
    await pool.close();
    const sorted = Float64Array.from(latencies).sort();
    return {
      name: `gateway (session cookie) → sidecar → app${options.label === undefined ? '' : ` ${options.label}`}`,
      requests,
      rps: requests / seconds,
      p50Ms: percentile(sorted, 0.5),
      p99Ms: percentile(sorted, 0.99),
      errors,
      cpuUsPerReq: {
        gateway: ((after[0] as number) - (before[0] as number)) / requests,
        sidecar: ((after[1] as number) - (before[1] as number)) / requests,
      },
    };
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runChild(spec: ChildSpec): Promise<void> {
  const td = TrustDomain.parse(BENCH_TRUST_DOMAIN);
  const svid = X509Svid.fromPem({
    id: SpiffeId.parse(spec.id),
    certChainPem: readFileSync(spec.files.chainFile, 'utf8'),
    privateKeyPem: readFileSync(spec.files.keyFile, 'utf8'),
    keyType: 'p256',
  });
  const holder = new CredentialHolder({ svid, bundle: TrustBundle.fromPem(td, readFileSync(spec.caFile, 'utf8')) });
  const ca = { url: 'https://127.0.0.1:9', bundle: spec.caFile, token: spec.caFile };
  let port: number;
  if (spec.role === 'sidecar') {
    const config = sidecarConfigFromObject(
      {
        trustDomain: td.name,
        ca,
        inbound: {
          listen: '127.0.0.1:0',
          app: `127.0.0.1:${spec.appPort}`,
          endUser: {
            issuers: [{ issuer: ISSUER, audiences: ['bench'], algorithms: ['ES256'] }],
            vouchers: [spec.voucher as string],
            claims: ['scope', 'email'],
          },
        },
        outbound: { listen: '127.0.0.1:0' },
        admin: { listen: '127.0.0.1:0' },
        drainTimeout: '1s',
      },
      'bench sidecar',
    );
    const sidecar = await startSidecar(config, {
      logger: silentLogger(),
      metrics: new Metrics({ defaultMetrics: true }),
      holder,
    });
    port = sidecar.inboundPort;
  } else {
    const secret = join(spec.dir, 'client.secret');
    writeFileSync(secret, 'bench-client-secret', { mode: 0o600 });
    const config = gatewayConfigFromObject(
      {
        trustDomain: td.name,
        ca,
        listen: '127.0.0.1:0',
        tls: { cert: spec.serverFiles?.chainFile, key: spec.serverFiles?.keyFile },
        session: { keys: [spec.sessionKey], idleTimeout: '1h', absoluteTimeout: '1h' },
        oidc: {
          issuer: ISSUER,
          clientId: 'bench',
          clientSecretFile: secret,
          redirectUri: 'https://127.0.0.1/.meshauth/callback',
          claims: ['email'],
        },
        routes: [
          {
            name: 'web',
            match: { host: '127.0.0.1', pathPrefix: '/' },
            to: { address: `127.0.0.1:${spec.peerPort}`, ids: [spec.peerId] },
          },
        ],
        admin: { listen: '127.0.0.1:0' },
      },
      'bench gateway',
    );
    const gateway = await startGateway(config, {
      logger: silentLogger(),
      metrics: new Metrics({ defaultMetrics: true }),
      holder,
    });
    port = gateway.port;
  }
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  process.once('SIGTERM', () => process.exit(0));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv[2] === '--child') {
    await runChild(JSON.parse(process.argv[3] ?? '{}') as ChildSpec);
  } else {
    const result = await benchGateway({ quick: process.argv.includes('--quick') });
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    process.exit(0);
  }
}
