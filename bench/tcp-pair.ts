// The meshauth side of the TCP bulk-transfer benchmark: two sidecar processes (startSidecar, as `meshauth sidecar`
// runs it, with the bench SVIDs in the credential holder instead of fetched from a CA): the client with one
// `outbound.tcp` listener, the server with `inbound.tcp` in front of the bench app. Metrics on, logs off, default
// policy (mTLS only).
// Child entry: `node dist/bench/tcp-pair.js --side JSON`.
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CredentialHolder } from '../src/agent/credential-holder.js';
import { sidecarConfigFromObject } from '../src/config/index.js';
import { SpiffeId, TrustDomain } from '../src/identity/index.js';
import { TrustBundle, X509Svid } from '../src/pki/index.js';
import { startSidecar } from '../src/sidecar/index.js';
import { Metrics, silentLogger } from '../src/telemetry/index.js';
import { BENCH_TRUST_DOMAIN, type PemFiles } from './bench-pki.js';
import { type Child, firstJsonLine, spawnChild } from './children.js';
import { SIDECAR_NODE_FLAGS } from './meshauth-pair.js';

interface SideSpec {
  readonly role: 'client' | 'server';
  readonly files: PemFiles;
  readonly id: string;
  readonly caFile: string;
  /** Server: the app. Client: the server side's TLS port. */
  readonly targetPort: number;
  /** Client: the server's SPIFFE ID. */
  readonly peerId?: string;
}

export interface TcpSide {
  readonly child: Child;
  /** Client: where the app connects; server: the TLS port. */
  readonly port: number;
}

// Children run the built file: under a test runner this module is the .ts source, which node cannot start.
const ENTRY = fileURLToPath(
  import.meta.url.endsWith('.ts') ? new URL('../dist/bench/tcp-pair.js', import.meta.url) : import.meta.url,
);

export async function startTcpSide(spec: SideSpec): Promise<TcpSide> {
  // The pair's Node flags (the image's and its pod's heap bound), as for the HTTP pair.
  const child = spawnChild(`meshauth-tcp-${spec.role}`, process.execPath, [
    ...SIDECAR_NODE_FLAGS,
    ENTRY,
    '--side',
    JSON.stringify(spec),
  ]);
  try {
    const ready = await firstJsonLine<{ port: number }>(child, 15_000);
    return { child, port: ready.port };
  } catch (error) {
    await child.stop();
    throw error;
  }
}

async function runSide(spec: SideSpec): Promise<void> {
  const td = TrustDomain.parse(BENCH_TRUST_DOMAIN);
  const svid = X509Svid.fromPem({
    id: SpiffeId.parse(spec.id),
    certChainPem: readFileSync(spec.files.chainFile, 'utf8'),
    privateKeyPem: readFileSync(spec.files.keyFile, 'utf8'),
    keyType: 'p256',
  });
  const bundle = TrustBundle.fromPem(td, readFileSync(spec.caFile, 'utf8'));
  const tcpKey = '127.0.0.1:0';
  const config = sidecarConfigFromObject(
    {
      trustDomain: td.name,
      // Never contacted: the holder is pre-filled, so no agent starts.
      ca: { url: 'https://127.0.0.1:9', bundle: spec.caFile, token: spec.caFile },
      inbound: {
        listen: '127.0.0.1:0',
        app: '127.0.0.1:9',
        ...(spec.role === 'server' ? { tcp: { app: `127.0.0.1:${spec.targetPort}` } } : {}),
      },
      outbound: {
        listen: '127.0.0.1:0',
        ...(spec.role === 'client'
          ? { tcp: { [tcpKey]: { address: `127.0.0.1:${spec.targetPort}`, ids: [spec.peerId ?? ''] } } }
          : {}),
      },
      admin: { listen: '127.0.0.1:0' },
      drainTimeout: '1s',
    },
    `bench tcp ${spec.role}`,
  );
  const sidecar = await startSidecar(config, {
    logger: silentLogger(),
    metrics: new Metrics({ defaultMetrics: true }), // as `meshauth sidecar` runs it
    holder: new CredentialHolder({ svid, bundle }),
  });
  const port = spec.role === 'client' ? (sidecar.tcpPorts.get(tcpKey) ?? 0) : sidecar.inboundPort;
  process.stdout.write(`${JSON.stringify({ pid: process.pid, port })}\n`);
  process.once('SIGTERM', () => {
    void sidecar.close(500).finally(() => process.exit(0));
  });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv[2] === '--side') await runSide(JSON.parse(process.argv[3] ?? '{}') as SideSpec);
}
