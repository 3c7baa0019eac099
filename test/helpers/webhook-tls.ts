// Serving certificates for the webhook tests, made with the openssl CLI the way an operator would (a CA and a
// leaf for 127.0.0.1 and meshauth-webhook.meshauth.svc, each with its own key), and an HTTPS client that verifies
// the webhook against that CA as the API server does.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { MAIN } from './meshauth-cli.js';

export interface WebhookCert {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

function openssl(args: readonly string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** makeWebhookCert's serving pair, also written as dir/tls.crt and dir/tls.key (the webhook's --tls-cert/--tls-key). */
export function writeWebhookCert(dir: string): WebhookCert {
  const cert = makeWebhookCert(dir, 'serving');
  writeFileSync(join(dir, 'tls.crt'), cert.certPem);
  writeFileSync(join(dir, 'tls.key'), cert.keyPem);
  return cert;
}

/** The value of one series (name and labels as exposed) in a Prometheus exposition; 0 when it is not there. */
export function exposedValue(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

/** A CA and a serving leaf signed by it, in `dir` under `name`.*. */
export function makeWebhookCert(dir: string, name: string): WebhookCert {
  const p = (suffix: string) => join(dir, `${name}.${suffix}`);
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', p('ca.key')], dir);
  openssl(
    ['req', '-x509', '-new', '-key', p('ca.key'), '-subj', `/CN=${name} test CA`, '-days', '2', '-out', p('ca.crt')],
    dir,
  );
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', p('key.ec')], dir);
  openssl(['pkcs8', '-topk8', '-nocrypt', '-in', p('key.ec'), '-out', p('key')], dir);
  openssl(['req', '-new', '-key', p('key'), '-subj', '/CN=meshauth-webhook.meshauth.svc', '-out', p('csr')], dir);
  writeFileSync(
    p('ext'),
    'subjectAltName=DNS:meshauth-webhook.meshauth.svc,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n',
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      p('csr'),
      '-CA',
      p('ca.crt'),
      '-CAkey',
      p('ca.key'),
      '-CAcreateserial',
      '-days',
      '1',
    ].concat(['-extfile', p('ext'), '-out', p('crt')]),
    dir,
  );
  return {
    caPem: readFileSync(p('ca.crt'), 'utf8'),
    certPem: readFileSync(p('crt'), 'utf8'),
    keyPem: readFileSync(p('key'), 'utf8'),
  };
}

export interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

export function post(port: number, ca: string, path: string, body: string, type = 'application/json'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        ca,
        servername: 'meshauth-webhook.meshauth.svc',
        headers: { 'content-type': type, 'content-length': Buffer.byteLength(body) },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.once('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
          });
        });
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}

export function fetchText(port: number, ca: string, path: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, ca, servername: 'meshauth-webhook.meshauth.svc', agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.once('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.once('error', reject);
    req.end();
  });
}

/** `meshauth webhook` from the built CLI, serving a fresh certificate from `dir` on an ephemeral 127.0.0.1 port. */
export interface WebhookCli {
  readonly port: number;
  readonly cert: WebhookCert;
  /** What the webhook wrote to stderr so far (its log lines). */
  stderr(): string;
  /** Its exit, once it has exited. */
  exited(): { code: number | null; signal: string | null } | undefined;
  /** Ends it by PID (SIGTERM) unless it has exited. */
  stop(): void;
  /** Sends `signal` by PID unless it has exited. */
  signal(signal: NodeJS.Signals): void;
}

export async function startWebhookCli(dir: string, nodeArgs: readonly string[] = []): Promise<WebhookCli> {
  const cert = writeWebhookCert(dir);
  const args = ['webhook', '--listen', '127.0.0.1:0', '--tls-cert', join(dir, 'tls.crt')];
  const child = spawn(process.execPath, [...nodeArgs, MAIN, ...args, '--tls-key', join(dir, 'tls.key')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let exited: { code: number | null; signal: string | null } | undefined;
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  child.once('exit', (code, signal) => {
    exited = { code, signal };
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', () => reject(new Error(`webhook exited: ${stderr}`)));
  });
  return {
    port,
    cert,
    stderr: () => stderr,
    exited: () => exited,
    stop: () => {
      if (exited === undefined && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
    },
    signal: (signal) => {
      if (exited === undefined && child.pid !== undefined) process.kill(child.pid, signal);
    },
  };
}
