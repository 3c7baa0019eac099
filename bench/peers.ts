// The reference pairs: HAProxy and nginx doing the same hop as a meshauth pair (plain HTTP in →
// outbound proxy → TLS 1.3 mTLS with the bench SVIDs → inbound proxy, client certificate required and verified →
// app), one thread/worker each, upstream keep-alive on, configs in the run's temp dir, foreground, killed by PID.
// Each reference does what the meshauth pair does, hop for hop, so the report's rows compare like for like.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BenchPki } from './bench-pki.js';
import { type Child, freePort, spawnChild, trackExtraPid, waitForPort } from './children.js';
import { childPids } from './load.js';

/** A running proxy pair as the load loop sees it: where to send requests and which processes to account. */
export interface ProxyPair {
  readonly name: string;
  readonly url: string;
  /** The processes that do the work (HAProxy itself; nginx's worker, not its master). */
  readonly outboundPid: number;
  readonly inboundPid: number;
  readonly version: string;
  stop(): Promise<void>;
}

export interface PeerOptions {
  readonly dir: string;
  readonly pki: BenchPki;
  readonly appPort: number;
}

/** The binary's path when it is on PATH (or in /usr/sbin, where Debian puts both), else undefined. */
export function findBinary(name: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin']) {
    if (dir === '') continue;
    try {
      execFileSync('test', ['-x', join(dir, name)]);
      return join(dir, name);
    } catch {
      // not here
    }
  }
  return undefined;
}

function versionOf(binary: string, args: readonly string[], pattern: RegExp): string {
  // nginx -v prints to stderr, haproxy -v to stdout: read both.
  const out = spawnSync(binary, args, { encoding: 'utf8' });
  return pattern.exec(`${out.stdout ?? ''}${out.stderr ?? ''}`)?.[1] ?? 'unknown';
}

// ---- HAProxy ----------------------------------------------------------------------------------------------------

export async function startHaproxyPair(options: PeerOptions): Promise<ProxyPair> {
  const binary = findBinary('haproxy');
  if (binary === undefined) throw new Error('haproxy not on PATH (apt-get install haproxy)');
  const { dir, pki, appPort } = options;
  const inPort = await freePort();
  const outPort = await freePort();
  const common = (extra: string): string => `global
  nbthread 1
  maxconn 4000
  ssl-default-bind-options ssl-min-ver TLSv1.3
  ssl-default-server-options ssl-min-ver TLSv1.3
  tune.ssl.cachesize 0
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
${extra}`;
  // Inbound: mTLS in (client certificate required, verified against the bench root), identity header, plain to app.
  // HAProxy 2.6 has no URI-SAN fetch, so the identity header carries the verified certificate's SHA-1 (nginx: same).
  const inbound = common(`frontend inbound
  bind 127.0.0.1:${inPort} ssl crt ${pki.serverFiles.comboFile} ca-file ${pki.caFile} verify required alpn http/1.1
  http-request del-header x-forwarded-client-cert
  http-request set-header x-peer-cert-sha1 %[ssl_c_sha1,hex]
  default_backend app
backend app
  server app 127.0.0.1:${appPort}
`);
  // Outbound: plain HTTP in, mTLS out with the client SVID, server verified by the root and the name localhost.
  const outbound = common(`frontend outbound
  bind 127.0.0.1:${outPort}
  default_backend mesh
backend mesh
  server inbound 127.0.0.1:${inPort} ssl crt ${pki.clientFiles.comboFile} ca-file ${pki.caFile} verify required verifyhost localhost sni str(localhost) alpn http/1.1
`);
  await writeFile(join(dir, 'haproxy-in.cfg'), inbound);
  await writeFile(join(dir, 'haproxy-out.cfg'), outbound);
  const inChild = spawnChild('haproxy-in', binary, ['-db', '-f', join(dir, 'haproxy-in.cfg')], dir);
  const outChild = spawnChild('haproxy-out', binary, ['-db', '-f', join(dir, 'haproxy-out.cfg')], dir);
  try {
    await waitForPort(inPort, inChild);
    await waitForPort(outPort, outChild);
  } catch (error) {
    await Promise.all([inChild.stop(), outChild.stop()]);
    throw error;
  }
  return {
    name: 'haproxy',
    url: `http://127.0.0.1:${outPort}/`,
    outboundPid: outChild.pid,
    inboundPid: inChild.pid,
    version: versionOf(binary, ['-v'], /version (\S+)/),
    stop: async () => {
      await Promise.all([inChild.stop(), outChild.stop()]);
    },
  };
}

// ---- nginx ------------------------------------------------------------------------------------------------------

export async function startNginxPair(options: PeerOptions): Promise<ProxyPair> {
  const binary = findBinary('nginx');
  if (binary === undefined) throw new Error('nginx not on PATH (apt-get install nginx)');
  const { dir, pki, appPort } = options;
  const inPort = await freePort();
  const outPort = await freePort();
  const config = (name: string, upstream: string, server: string): string => {
    const prefix = join(dir, `nginx-${name}`);
    return `worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  keepalive_timeout 120s;
  keepalive_requests 10000000;
  upstream up {
    ${upstream}
    keepalive 64;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
  }
  server {
${server}
  }
}
`;
  };
  const inbound = config(
    'in',
    `server 127.0.0.1:${appPort};`,
    `    listen 127.0.0.1:${inPort} ssl;
    ssl_protocols TLSv1.3;
    ssl_certificate ${pki.serverFiles.chainFile};
    ssl_certificate_key ${pki.serverFiles.keyFile};
    ssl_client_certificate ${pki.caFile};
    ssl_verify_client on;
    ssl_verify_depth 3;
    ssl_session_cache off;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header x-forwarded-client-cert "";
      proxy_set_header x-peer-cert-sha1 $ssl_client_fingerprint;
    }`,
  );
  const outbound = config(
    'out',
    `server 127.0.0.1:${inPort};`,
    `    listen 127.0.0.1:${outPort};
    location / {
      proxy_pass https://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_ssl_protocols TLSv1.3;
      proxy_ssl_certificate ${pki.clientFiles.chainFile};
      proxy_ssl_certificate_key ${pki.clientFiles.keyFile};
      proxy_ssl_trusted_certificate ${pki.caFile};
      proxy_ssl_verify on;
      proxy_ssl_verify_depth 3;
      proxy_ssl_name localhost;
      proxy_ssl_server_name on;
      proxy_ssl_session_reuse on;
    }`,
  );
  const start = async (name: string, text: string): Promise<Child> => {
    const prefix = join(dir, `nginx-${name}`);
    await mkdir(prefix, { recursive: true });
    const file = join(prefix, 'nginx.conf');
    await writeFile(file, text);
    return spawnChild(
      `nginx-${name}`,
      binary,
      ['-p', prefix, '-e', join(prefix, 'error.log'), '-c', file, '-g', 'daemon off;'],
      prefix,
    );
  };
  const inChild = await start('in', inbound);
  const outChild = await start('out', outbound);
  const stop = async (): Promise<void> => {
    await Promise.all([inChild.stop(), outChild.stop()]);
  };
  try {
    await waitForPort(inPort, inChild);
    await waitForPort(outPort, outChild);
    const worker = async (child: Child): Promise<number> => {
      for (let i = 0; i < 50; i++) {
        const pid = childPids(child.pid)[0];
        if (pid !== undefined) {
          trackExtraPid(pid);
          return pid;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`${child.name}: no worker process found`);
    };
    const inWorker = await worker(inChild);
    const outWorker = await worker(outChild);
    return {
      name: 'nginx',
      url: `http://127.0.0.1:${outPort}/`,
      outboundPid: outWorker,
      inboundPid: inWorker,
      version: versionOf(binary, ['-v'], /nginx\/(\S+)/),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
