// A client certificate whose key is on a curve without a NIST name (brainpoolP256r1, secp256k1) must never reach
// getPeerCertificate(): Node 24 crashes the process (SIGSEGV) turning such a certificate into its object, and the CA
// reads the leaf of every client that presents one before judging it (src/ca/peer-svid.ts; an issuer on such a
// curve: ca-client-chain-refusals). The mesh TLS profile's signature algorithms and groups keep such a key out
// of the handshake. The server runs in a child process, with
// the profile's options and the CA's certificate request, so a crash is seen as one; on Node 20 (OpenSSL 3.0) the
// client cannot sign with brainpool at all and the cases pass either way.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { protocolOptions } from '../../src/tls/index.js';
import { available } from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';
import { until } from '../helpers/wait.js';

const HAVE_OPENSSL = available('openssl');
if (!HAVE_OPENSSL) console.warn('tls-peer-key-curves: openssl not on PATH, skipping');

/** A TLS server like `ca serve`'s door: the mesh profile, a certificate requested, every presented chain read. */
const SERVER = `
const tls = require('node:tls');
const options = JSON.parse(process.argv[1]);
const server = tls.createServer({ ...options, requestCert: true, rejectUnauthorized: false }, (socket) => {
  const peer = socket.getPeerCertificate(true);
  process.stdout.write(peer.raw === undefined ? 'none\\n' : 'peer\\n');
  socket.end();
});
server.on('tlsClientError', (error) => process.stdout.write('refused ' + error.code + '\\n'));
server.listen(0, '127.0.0.1', () => process.stdout.write('port ' + server.address().port + '\\n'));
process.stdin.on('end', () => server.close());
process.stdin.resume();
`;

describe.skipIf(!HAVE_OPENSSL)('mesh TLS profile: client keys on curves without a NIST name', () => {
  let dir: string;
  let server: ReturnType<typeof spawn>;
  let port: number;
  const lines: string[] = [];
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let ca: TestCa;
  let svid: TestSvid;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshauth-curves-'));
    ca = await TestCa.create();
    svid = await ca.issue({ id: ca.idFor('/ns/ca/sa/server') });
    const options = { ...protocolOptions({ tls12: true }), cert: svid.chainPem, key: svid.keyPem };
    server = spawn(process.execPath, ['-e', SERVER, JSON.stringify(options)], { stdio: ['pipe', 'pipe', 'pipe'] });
    server.on('exit', (code, signal) => {
      exit = { code, signal };
    });
    server.stdout?.on('data', (data: Buffer) => lines.push(...data.toString().trim().split('\n')));
    await until('the server listens', () => lines.some((l) => l.startsWith('port ')), 10_000);
    port = Number(lines.find((l) => l.startsWith('port '))?.slice(5));
  }, 30_000);
  afterAll(async () => {
    server?.stdin?.end();
    if (exit === undefined) await new Promise((resolve) => server.once('exit', resolve));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function selfSigned(curve: string): { cert: string; key: string } {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        `ec_paramgen_curve:${curve}`,
        '-nodes',
        '-keyout',
        `${curve}.key`,
        '-out',
        `${curve}.crt`,
        '-subj',
        '/CN=hostile',
        '-days',
        '1',
      ],
      { cwd: dir, stdio: 'ignore' },
    );
    return {
      cert: readFileSync(join(dir, `${curve}.crt`), 'utf8'),
      key: readFileSync(join(dir, `${curve}.key`), 'utf8'),
    };
  }

  /** Connects with `credentials` and resolves once the server has answered this connection (one line). */
  function present(credentials: { cert: string; key: string }, maxVersion: 'TLSv1.2' | 'TLSv1.3'): Promise<string> {
    const seen = lines.length;
    return new Promise((resolve) => {
      const socket = tlsConnect({
        host: '127.0.0.1',
        port,
        ...credentials,
        maxVersion,
        ca: [ca.rootPem],
        checkServerIdentity: () => undefined,
        // The hostile client may use any curve its OpenSSL signs with.
        ciphers: 'DEFAULT@SECLEVEL=0',
      });
      socket.on('data', () => undefined);
      socket.on('error', () => undefined);
      socket.on('close', async () => {
        await until('the server answers', () => lines.length > seen || exit !== undefined);
        resolve(exit === undefined ? (lines[seen] as string) : `server died (${exit.signal ?? exit.code})`);
      });
    });
  }

  const hostile: Array<[string, string, 'TLSv1.2' | 'TLSv1.3']> = [
    ['fail/brainpoolP256r1 over TLS 1.3 → no client certificate, the server lives', 'brainpoolP256r1', 'TLSv1.3'],
    ['fail/secp256k1 over TLS 1.3 → no client certificate, the server lives', 'secp256k1', 'TLSv1.3'],
    ['fail/brainpoolP256r1 over TLS 1.2 → refused (wrong curve), the server lives', 'brainpoolP256r1', 'TLSv1.2'],
    ['fail/secp256k1 over TLS 1.2 → refused (wrong curve), the server lives', 'secp256k1', 'TLSv1.2'],
  ];
  it.each(hostile)('%s', async (_name, curve, version) => {
    const answer = await present(selfSigned(curve), version);
    expect(answer).toMatch(/^(none|refused )/);
  });

  it('ok/a mesh SVID (P-256) is still presented and read, TLS 1.3 and 1.2', async () => {
    expect(await present({ cert: svid.chainPem, key: svid.keyPem }, 'TLSv1.3')).toBe('peer');
    expect(await present({ cert: svid.chainPem, key: svid.keyPem }, 'TLSv1.2')).toBe('peer');
  });

  it('ok/Ed25519 and RSA-2048 SVIDs are still presented and read', async () => {
    for (const keyType of ['ed25519', 'rsa2048'] as const) {
      const other = await ca.issue({ id: ca.idFor('/ns/a/sa/b'), keyType });
      expect(await present({ cert: other.chainPem, key: other.keyPem }, 'TLSv1.3')).toBe('peer');
    }
  });
});
