// The meshauth pair for the proxy comparison: two sidecar processes (src/sidecar startSidecar, one each, as the
// CLI runs it but with the bench SVIDs injected into the credential holder instead of fetched from a CA), so the
// runner's one load loop measures meshauth exactly like HAProxy and nginx. Default policy (mTLS only, SPEC §6),
// metrics on, logs off. Child entry: `node dist/bench/meshauth-pair.js --sidecar JSON`.
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CredentialHolder } from '../src/agent/credential-holder.js';
import { sidecarConfigFromObject } from '../src/config/index.js';
import { SpiffeId, TrustDomain } from '../src/identity/index.js';
import { TrustBundle, X509Svid } from '../src/pki/index.js';
import { startSidecar } from '../src/sidecar/index.js';
import { Metrics, silentLogger } from '../src/telemetry/index.js';
import { BENCH_TRUST_DOMAIN, type PemFiles } from './bench-pki.js';
import { firstJsonLine, spawnChild } from './children.js';
import type { PeerOptions, ProxyPair } from './peers.js';

/** The host name the load generator sends; the client sidecar routes it to the server sidecar. */
export const MESH_HOST = 'app.bench';

interface SidecarSpec {
  readonly role: 'client' | 'server';
  readonly files: PemFiles;
  readonly id: string;
  readonly caFile: string;
  readonly appPort: number;
  /** Client only: the server sidecar's inbound port and SPIFFE ID. */
  readonly peerPort?: number;
  readonly peerId?: string;
}

interface Ready {
  readonly pid: number;
  readonly inboundPort: number;
  readonly outboundPort: number;
}

const ENTRY = fileURLToPath(import.meta.url);

export async function startMeshauthPair(options: PeerOptions): Promise<ProxyPair> {
  const { pki, appPort } = options;
  const spawnSidecar = async (spec: SidecarSpec) => {
    const child = spawnChild(`meshauth-${spec.role}`, process.execPath, [ENTRY, '--sidecar', JSON.stringify(spec)]);
    try {
      return { child, ready: await firstJsonLine<Ready>(child, 15_000) };
    } catch (error) {
      await child.stop();
      throw error;
    }
  };
  const server = await spawnSidecar({
    role: 'server',
    files: pki.serverFiles,
    id: pki.server.id.toString(),
    caFile: pki.caFile,
    appPort,
  });
  let client: Awaited<ReturnType<typeof spawnSidecar>>;
  try {
    client = await spawnSidecar({
      role: 'client',
      files: pki.clientFiles,
      id: pki.client.id.toString(),
      caFile: pki.caFile,
      appPort,
      peerPort: server.ready.inboundPort,
      peerId: pki.server.id.toString(),
    });
  } catch (error) {
    await server.child.stop();
    throw error;
  }
  return {
    name: 'meshauth',
    url: `http://127.0.0.1:${client.ready.outboundPort}/`,
    outboundPid: client.child.pid,
    inboundPid: server.child.pid,
    version: `node ${process.version}`,
    stop: async () => {
      await Promise.all([client.child.stop(), server.child.stop()]);
    },
  };
}

async function runSidecar(spec: SidecarSpec): Promise<void> {
  const td = TrustDomain.parse(BENCH_TRUST_DOMAIN);
  const svid = X509Svid.fromPem({
    id: SpiffeId.parse(spec.id),
    certChainPem: readFileSync(spec.files.chainFile, 'utf8'),
    privateKeyPem: readFileSync(spec.files.keyFile, 'utf8'),
    keyType: 'p256',
  });
  const bundle = TrustBundle.fromPem(td, readFileSync(spec.caFile, 'utf8'));
  const config = sidecarConfigFromObject(
    {
      trustDomain: td.name,
      // Never contacted: the holder is pre-filled, so no agent starts.
      ca: { url: 'https://127.0.0.1:9', bundle: spec.caFile, token: spec.caFile },
      inbound: { listen: '127.0.0.1:0', app: `127.0.0.1:${spec.appPort}` },
      outbound: {
        listen: '127.0.0.1:0',
        ...(spec.peerPort === undefined || spec.peerId === undefined
          ? {}
          : { routes: { [MESH_HOST]: { address: `127.0.0.1:${spec.peerPort}`, ids: [spec.peerId] } } }),
      },
      admin: { listen: '127.0.0.1:0' },
      drainTimeout: '1s',
    },
    `bench ${spec.role}`,
  );
  const sidecar = await startSidecar(config, {
    logger: silentLogger(),
    metrics: new Metrics({ defaultMetrics: true }), // as `meshauth sidecar` runs it
    holder: new CredentialHolder({ svid, bundle }),
  });
  const ready: Ready = { pid: process.pid, inboundPort: sidecar.inboundPort, outboundPort: sidecar.outboundPort };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
  // `--cpu-prof` is refused in NODE_OPTIONS: bench/profile asks for a profile through this variable instead.
  const profileDir = process.env.MESHAUTH_BENCH_CPU_PROF;
  const profiler = profileDir === undefined ? undefined : new Session();
  if (profiler !== undefined) {
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.start');
  }
  process.once('SIGTERM', () => {
    void (async () => {
      if (profiler !== undefined && profileDir !== undefined) {
        const { profile } = await profiler.post('Profiler.stop');
        writeFileSync(join(profileDir, `${spec.role}-${process.pid}.cpuprofile`), JSON.stringify(profile));
      }
      await sidecar.close(500);
    })().finally(() => process.exit(0));
  });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv[2] === '--sidecar') await runSidecar(JSON.parse(process.argv[3] ?? '{}') as SidecarSpec);
}
