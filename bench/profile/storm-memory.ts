// Where a handshake storm's memory goes: one kind of mTLS connection at a time (ok: a valid client SVID and one
// request with `Connection: close`; untrusted: a certificate from another CA; no_cert: none) against the real inbound
// (startSidecar with static bench SVIDs) or a bare node:tls server with the same options (mtlsServerOptions), run as
// a child process; RSS (/proc/PID/status VmRSS, RssAnon) and process.memoryUsage() are sampled every --every
// connections and printed as a table (JSON with --json), with the server's CPU (process.cpuUsage(), user + system)
// per connection between the first sample and the last: the handshake's cost on the server side, the request's
// included. Pass MALLOC_* in the environment to try glibc's knobs.
// Run: node dist/bench/profile/storm-memory.js --server meshauth|bare|bare-chain|bare-x509|bare-both|bare-norequest|bare-noca|bare-own --kind ok|untrusted|no_cert|mix
//        [--count 20000] [--every 2000] [--in-flight 60] [--gc]
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer as createNetServer } from 'node:net';
import { connect, createSecureContext, createServer as createTlsServer, type SecureContext, TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CredentialHolder } from '../../src/agent/credential-holder.js';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { startSidecar } from '../../src/sidecar/index.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { mtlsServerOptions } from '../../src/tls/index.js';
import { createBenchPki } from '../bench-pki.js';

type Kind = 'ok' | 'untrusted' | 'no_cert';

interface Pems {
  readonly ca: string;
  readonly client: { cert: string; key: string };
  readonly stranger: { cert: string; key: string };
}

interface MemorySample {
  readonly rss: number;
  readonly heapUsed: number;
  readonly external: number;
  readonly arrayBuffers: number;
  /** process.cpuUsage() user + system, µs. */
  readonly cpuMicros: number;
}

const { values } = parseArgs({
  options: {
    child: { type: 'boolean', default: false },
    server: { type: 'string', default: 'meshauth' },
    kind: { type: 'string', default: 'ok' },
    count: { type: 'string', default: '20000' },
    every: { type: 'string', default: '2000' },
    'in-flight': { type: 'string', default: '60' },
    'app-port': { type: 'string', default: '0' },
    gc: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});

if (values.child) await child();
else await parent();

/** The server: creates the PKIs, starts the inbound (or a bare tls.Server), answers 'sample' over IPC. */
async function child(): Promise<void> {
  const dir = process.env.STORM_DIR as string;
  const pki = await createBenchPki(dir);
  const stranger = await createBenchPki(`${dir}/stranger`);
  const credentials = { svid: pki.server, bundle: pki.bundle };
  let port: number;
  if (values.server === 'meshauth') {
    const config = sidecarConfigFromObject(
      {
        trustDomain: pki.trustDomain.toString(),
        ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent/bundle.pem', token: '/nonexistent/token' },
        inbound: { listen: '127.0.0.1:0', app: `127.0.0.1:${values['app-port']}` },
        outbound: { listen: '127.0.0.1:0', routes: {}, egress: [] },
        admin: { listen: '127.0.0.1:0' },
      },
      'storm-memory',
    );
    const sidecar = await startSidecar(config, {
      logger: silentLogger(),
      metrics: new Metrics({ defaultMetrics: true }),
      holder: new CredentialHolder(credentials),
    });
    port = sidecar.inboundPort;
  } else {
    // bare: nothing read from the socket; bare-chain: getPeerCertificate(true) as peerChainDerOf does; bare-x509:
    // getPeerX509Certificate() as verifyPeer does; bare-both: both, in the inbound's order.
    const mode = values.server as string;
    // bare-norequest: no client certificate asked for (Node 24 reads the peer certificate itself when one is).
    const options = mtlsServerOptions({ tls12: false }, credentials);
    // bare-noca: a client certificate asked for but no chain verified by OpenSSL (no `ca`), as the CA's server does.
    const tlsOptions =
      mode === 'bare-norequest'
        ? { ...options, requestCert: false, rejectUnauthorized: false }
        : mode === 'bare-noca'
          ? { ...options, ca: undefined, rejectUnauthorized: false }
          : options;
    const answer = (socket: TLSSocket) => {
      if (mode === 'bare-chain' || mode === 'bare-both') socket.getPeerCertificate(true);
      if (mode === 'bare-x509' || mode === 'bare-both') socket.getPeerX509Certificate();
      let head = '';
      socket.on('data', (chunk: Buffer) => {
        head += chunk.toString('latin1');
        if (head.includes('\r\n\r\n'))
          socket.end('HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n');
      });
      socket.on('error', () => undefined);
    };
    // bare-own: the TLSSocket made over the accepted TCP socket here, not by tls.Server, whose 'secure' handler
    // reads the peer with getPeerX509Certificate() on Node 24; the verification result read from the handle.
    const ownContext = mode === 'bare-own' ? createSecureContext(options) : undefined;
    const server =
      mode === 'bare-own'
        ? createNetServer((raw) => {
            const socket = new TLSSocket(raw, {
              isServer: true,
              secureContext: ownContext,
              requestCert: true,
              rejectUnauthorized: true,
            });
            socket.on('secure', () => {
              const handle = (socket as unknown as { _handle: { verifyError(): Error | null } })._handle;
              if (handle.verifyError() !== null || socket.getPeerCertificate().raw === undefined) socket.destroy();
              else answer(socket);
            });
            socket.on('error', () => undefined);
          })
        : createTlsServer(tlsOptions, answer);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  }
  const gc = (globalThis as { gc?: () => void }).gc;
  process.on('message', (message: string) => {
    if (message !== 'sample') return;
    if (values.gc && gc !== undefined) gc();
    const m = process.memoryUsage();
    const cpu = process.cpuUsage();
    const sample: MemorySample = {
      cpuMicros: cpu.user + cpu.system,
      rss: m.rss,
      heapUsed: m.heapUsed,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
    };
    process.send?.({ sample });
  });
  const pems: Pems = {
    ca: pki.rootPem,
    client: { cert: pki.client.certChainPem, key: pki.client.privateKeyPem },
    stranger: { cert: stranger.client.certChainPem, key: stranger.client.privateKeyPem },
  };
  process.send?.({ port, pems });
}

function procStatus(pid: number): { vmRss: number; rssAnon: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)\\s+kB`).exec(status)?.[1] ?? Number.NaN) * 1024;
  return { vmRss: kb('VmRSS'), rssAnon: kb('RssAnon') };
}

async function parent(): Promise<void> {
  const { mkdtempSync, mkdirSync, rmSync } = await import('node:fs');
  const dir = mkdtempSync('/tmp/storm-memory-');
  mkdirSync(`${dir}/stranger`);
  const app = createHttpServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-length': 3 }).end('ok\n'));
  });
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  const appPort = (app.address() as AddressInfo).port;
  const server: ChildProcess = fork(
    fileURLToPath(import.meta.url),
    ['--child', '--server', values.server as string, '--app-port', String(appPort), ...(values.gc ? ['--gc'] : [])],
    { env: { ...process.env, STORM_DIR: dir }, execArgv: values.gc ? ['--expose-gc'] : [], stdio: 'inherit' },
  );
  const pid = server.pid as number;
  const ready = await new Promise<{ port: number; pems: Pems }>((resolve, reject) => {
    server.once('message', (message) => resolve(message as { port: number; pems: Pems }));
    server.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  const contexts: Record<Kind, SecureContext> = {
    ok: createSecureContext({ ...ready.pems.client, ca: ready.pems.ca }),
    untrusted: createSecureContext({ ...ready.pems.stranger, ca: ready.pems.ca }),
    no_cert: createSecureContext({ ca: ready.pems.ca }),
  };
  const sample = async () => {
    const memory = await new Promise<MemorySample>((resolve) => {
      const onMessage = (message: { sample?: MemorySample }) => {
        if (message.sample === undefined) return;
        server.off('message', onMessage);
        resolve(message.sample);
      };
      server.on('message', onMessage);
      server.send('sample');
    });
    return { ...procStatus(pid), ...memory };
  };
  const count = Number(values.count);
  const every = Number(values.every);
  const inFlightMax = Number(values['in-flight']);
  const kindOf = (i: number): Kind =>
    values.kind === 'mix' ? (i % 10 === 3 ? 'untrusted' : i % 10 === 7 ? 'no_cert' : 'ok') : (values.kind as Kind);
  const outcomes: Record<string, number> = {};
  const rows: Array<{ n: number; seconds: number } & Awaited<ReturnType<typeof sample>>> = [];
  const started = Date.now();
  rows.push({ n: 0, seconds: 0, ...(await sample()) });
  let opened = 0;
  let done = 0;
  let inFlight = 0;
  await new Promise<void>((finish) => {
    let sampling = false;
    const pump = (): void => {
      while (!sampling && inFlight < inFlightMax && opened < count && opened - done < inFlightMax) open(opened++);
    };
    const open = (i: number): void => {
      const kind = kindOf(i);
      inFlight++;
      let reply = '';
      const socket = connect(
        {
          host: '127.0.0.1',
          port: ready.port,
          secureContext: contexts[kind],
          checkServerIdentity: () => undefined,
          ALPNProtocols: ['http/1.1'],
        },
        () => socket.write(`GET /storm/${i} HTTP/1.1\r\nHost: server.storm\r\nConnection: close\r\n\r\n`),
      );
      socket.on('data', (chunk: Buffer) => {
        reply += chunk.toString('latin1');
      });
      socket.on('error', () => undefined);
      socket.setTimeout(30_000, () => socket.destroy());
      socket.on('close', () => {
        inFlight--;
        done++;
        const outcome = `${kind}:${reply.startsWith('HTTP/1.1 200 ') ? '200' : reply === '' ? 'refused' : 'other'}`;
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
        if (done % every === 0 || done === count) {
          sampling = true;
          // Let the server finish closing what it has in flight before sampling.
          const wait = () => (inFlight > 0 ? setTimeout(wait, 5) : void take());
          const take = async () => {
            await new Promise((r) => setTimeout(r, 200));
            rows.push({ n: done, seconds: (Date.now() - started) / 1000, ...(await sample()) });
            sampling = false;
            if (done === count) finish();
            else pump();
          };
          wait();
          return;
        }
        pump();
      });
    };
    pump();
  });
  server.kill('SIGKILL');
  app.close();
  rmSync(dir, { recursive: true, force: true });
  const mib = (b: number) => (b / 1048576).toFixed(1);
  const first = rows[1] ?? rows[0];
  const last = rows[rows.length - 1];
  const perConn =
    first === undefined || last === undefined || last.n === first.n
      ? Number.NaN
      : (last.vmRss - first.vmRss) / (last.n - first.n);
  const cpuPerConn =
    first === undefined || last === undefined || last.n === first.n
      ? Number.NaN
      : (last.cpuMicros - first.cpuMicros) / (last.n - first.n);
  const env = Object.entries(process.env)
    .filter(([k]) => k.startsWith('MALLOC_') || k === 'GLIBC_TUNABLES')
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  const label = `${values.server} ${values.kind} node ${process.version}${values.gc ? ' gc' : ''}${env ? ` ${env}` : ''}`;
  if (values.json) {
    console.log(JSON.stringify({ label, outcomes, perConnBytes: perConn, cpuMicrosPerConn: cpuPerConn, rows }));
    return;
  }
  console.log(`# ${label}  outcomes ${JSON.stringify(outcomes)}`);
  console.log('n\ts\tVmRSS\tRssAnon\theapUsed\texternal\tarrayBuffers (MiB)');
  for (const r of rows) {
    console.log(
      `${r.n}\t${r.seconds.toFixed(0)}\t${mib(r.vmRss)}\t${mib(r.rssAnon)}\t${mib(r.heapUsed)}\t${mib(r.external)}\t${mib(r.arrayBuffers)}`,
    );
  }
  console.log(`# VmRSS growth after the first sample: ${perConn.toFixed(0)} bytes per connection`);
  console.log(`# server CPU after the first sample: ${cpuPerConn.toFixed(0)} µs per connection`);
}
