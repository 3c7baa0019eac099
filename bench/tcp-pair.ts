// The meshauth side of the TCP bulk-transfer benchmark: two child processes, one per side, each running the TCP
// tunnel components as a sidecar wires them (client: TcpOutboundListeners; server: a TLS listener with the mesh
// profile, client certificate required, verifyPeer, ALPN meshauth-tcp/1 → TcpInboundHandler), with the bench SVIDs
// in the credential holder, metrics on, logs off, default policy (mTLS only).
// Child entry: `node dist/bench/tcp-pair.js --side JSON`.
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CredentialHolder } from '../src/agent/credential-holder.js';
import { SpiffeId, TrustDomain } from '../src/identity/index.js';
import { TrustBundle, X509Svid } from '../src/pki/index.js';
import { TCP_ALPN, TcpInboundHandler, TcpOutboundListeners } from '../src/sidecar/tcp/index.js';
import { Metrics, silentLogger } from '../src/telemetry/index.js';
import { mtlsServerOptions, verifyPeer } from '../src/tls/index.js';
import { BENCH_TRUST_DOMAIN, type PemFiles } from './bench-pki.js';
import { type Child, firstJsonLine, spawnChild } from './children.js';

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
  const child = spawnChild(`meshauth-tcp-${spec.role}`, process.execPath, [ENTRY, '--side', JSON.stringify(spec)]);
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
  const holder = new CredentialHolder({ svid, bundle: TrustBundle.fromPem(td, readFileSync(spec.caFile, 'utf8')) });
  const metrics = new Metrics({ defaultMetrics: true });
  const logger = silentLogger();
  const profile = { tls12: false };
  let port: number;
  if (spec.role === 'client') {
    const key = '127.0.0.1:0';
    const outbound = new TcpOutboundListeners({
      routes: new Map([
        [
          key,
          {
            listen: { host: '127.0.0.1', port: 0 },
            address: { host: '127.0.0.1', port: spec.targetPort },
            ids: spec.peerId === undefined ? [] : [SpiffeId.parse(spec.peerId)],
          },
        ],
      ]),
      trustDomain: td,
      holder,
      profile,
      metrics,
      logger,
    });
    port = (await outbound.listen()).get(key) ?? 0;
  } else {
    const inbound = new TcpInboundHandler({ app: { host: '127.0.0.1', port: spec.targetPort }, metrics, logger });
    const server = createTlsServer({
      ...mtlsServerOptions(profile, holder.current),
      ALPNProtocols: ['h2', 'http/1.1', TCP_ALPN],
    });
    server.on('secureConnection', (socket: TLSSocket) => {
      const credentials = holder.current;
      if (credentials === undefined || socket.alpnProtocol !== TCP_ALPN) {
        socket.destroy();
        return;
      }
      try {
        inbound.adopt(socket, verifyPeer(socket, td, credentials.svid.id, new Date()));
      } catch {
        socket.destroy();
      }
    });
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  }
  process.stdout.write(`${JSON.stringify({ pid: process.pid, port })}\n`);
  process.once('SIGTERM', () => process.exit(0));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv[2] === '--side') await runSide(JSON.parse(process.argv[3] ?? '{}') as SideSpec);
}
