// "N CA processes behind one address", the cheap way: HAProxy in TCP mode, one thread, round robin. In a cluster
// the Service's balancing is kube-proxy's NAT in the kernel and costs next to nothing; a balancer written in
// Node pipes every byte through JavaScript and, in a 10,000-agent storm, took a tenth of the machine's CPU away
// from the CAs and the agents. TLS passes through untouched; a refused connect is retried on the other replica
// (`option redispatch`), so killing a replica moves its share of new connections to the others.
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, spawnChild, waitForPort } from '../children.js';
import { findBinary } from '../peers.js';
import type { Backend } from './tcp-balancer.js';

export interface HaproxyBalancer {
  readonly port: number;
  readonly pid: number;
  close(): Promise<void>;
}

/** Undefined when HAProxy is not installed (the caller picks another balancer, or stops). */
export async function startHaproxyBalancer(
  backends: readonly Backend[],
  dir: string,
  maxConnections: number,
): Promise<HaproxyBalancer | undefined> {
  const binary = findBinary('haproxy');
  if (binary === undefined) return undefined;
  // Two descriptors per connection; HAProxy refuses to start on a maxconn the hard limit cannot hold. Past it,
  // connections wait in the listen backlog, as they would at a saturated node.
  const hardLimit = Number(execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim());
  const connections = Number.isFinite(hardLimit)
    ? Math.min(maxConnections, Math.floor((hardLimit - 200) / 2))
    : maxConnections;
  const port = await freePort();
  const servers = backends.map((b, i) => `  server ca${i + 1} ${b.host}:${b.port}`).join('\n');
  // Timeouts far above the agents' own (10 s of no progress): the agents decide when to give up, not the balancer.
  const config = `global
  nbthread 1
  maxconn ${connections}
defaults
  mode tcp
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  retries 2
  option redispatch 1
listen ca
  bind 127.0.0.1:${port}
  maxconn ${connections}
  balance roundrobin
${servers}
`;
  const file = join(dir, 'haproxy-balancer.cfg');
  await writeFile(file, config);
  const child = spawnChild('haproxy-balancer', binary, ['-db', '-f', file], dir);
  try {
    await waitForPort(port, child);
  } catch (error) {
    await child.stop();
    throw error;
  }
  return { port, pid: child.pid, close: () => child.stop() };
}
