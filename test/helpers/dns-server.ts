// A real DNS server for tests: Debian's dnsmasq on 127.0.0.1 and a free port (it binds UDP and TCP; picked below
// the ephemeral range, see free-port.ts), answering A records from a hosts file with a fixed TTL (its
// `--local-ttl`), no upstream, no /etc/hosts. setRecords() rewrites the file and sends SIGHUP (dnsmasq re-reads it),
// then waits until the server answers with the new set. Ended by its PID.
import { type ChildProcess, spawn } from 'node:child_process';
import { Resolver } from 'node:dns';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';
import { waitFor } from './wait.js';

export interface DnsServer {
  /** `127.0.0.1:<port>`, for `outbound.dns.servers`. */
  readonly address: string;
  /** Replaces every record: name → IPv4 addresses. Resolves once the server serves them. */
  setRecords(records: Readonly<Record<string, readonly string[]>>): Promise<void>;
  close(): Promise<void>;
}

export async function startDnsServer(
  records: Readonly<Record<string, readonly string[]>>,
  ttlSeconds = 1,
): Promise<DnsServer> {
  const dir = mkdtempSync(join(tmpdir(), 'meshauth-dns-'));
  const hostsFile = join(dir, 'hosts');
  writeHosts(hostsFile, records);
  const port = await freePort({ udp: true });
  const child: ChildProcess = spawn(
    'dnsmasq',
    [
      '--no-daemon',
      '--conf-file=/dev/null',
      `--port=${port}`,
      '--listen-address=127.0.0.1',
      '--bind-interfaces',
      '--no-resolv',
      '--no-hosts',
      `--addn-hosts=${hostsFile}`,
      `--local-ttl=${ttlSeconds}`,
      '--cache-size=0',
      `--pid-file=${join(dir, 'pid')}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const address = `127.0.0.1:${port}`;
  const server: DnsServer = {
    address,
    async setRecords(next) {
      writeHosts(hostsFile, next);
      child.kill('SIGHUP');
      await waitForAnswers(address, next, () => stderr);
    },
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitForAnswers(address, records, () => stderr);
  } catch (error) {
    await server.close();
    throw error;
  }
  return server;
}

function writeHosts(file: string, records: Readonly<Record<string, readonly string[]>>): void {
  const lines: string[] = [];
  for (const [name, addresses] of Object.entries(records)) for (const a of addresses) lines.push(`${a} ${name}`);
  writeFileSync(file, `${lines.join('\n')}\n`);
}

/** Polls the server (bounded) until every name answers exactly its addresses. */
async function waitForAnswers(
  address: string,
  records: Readonly<Record<string, readonly string[]>>,
  stderr: () => string,
): Promise<void> {
  const resolver = new Resolver({ timeout: 200, tries: 1 });
  resolver.setServers([address]);
  await waitFor(
    'dnsmasq to serve the records',
    async () => {
      for (const [name, expected] of Object.entries(records)) {
        const got = await new Promise<string[]>((resolve) =>
          resolver.resolve4(name, (error, addresses) => resolve(error === null ? addresses : [])),
        );
        if ([...got].sort().join(',') !== [...expected].sort().join(',')) return false;
      }
      return true;
    },
    5_000,
  ).catch((error: Error) => {
    throw new Error(`${error.message}: ${stderr()}`);
  });
}
