// `ca serve --listen` on a specific IP other than 127.0.0.1: the CA's URL and default issuer name that IP, and its
// serving certificate must name it too, or a client that checks the host name (curl, an OIDC client fetching the
// discovery document or the JWKS) refuses the CA at the URL it advertises. 127.0.0.2 stands in for any such IP (the
// whole of 127.0.0.0/8 is loopback), so the test needs no IPv6 on the machine.
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import { Agent, request } from 'undici';
import { beforeAll, describe, expect, it } from 'vitest';
import { type CaServer, loadCaMaterial, startCaServer } from '../../src/ca/index.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { makeCaDir } from '../helpers/ca-dir.js';

const LISTEN_IP = '127.0.0.2';
/** A `--san` in the dotted IPv4-mapped spelling, which the certificate encoder misreads unless it is rewritten. */
const MAPPED_SAN = '::ffff:10.0.0.6';
const HAVE_OPENSSL = spawnSync('openssl', ['version']).status === 0;
if (!HAVE_OPENSSL) console.warn('ca-serving-sans: openssl not on PATH, skipping its check');

let server: CaServer;
let bundlePem: string;

beforeAll(async () => {
  const ca = await makeCaDir();
  server = await startCaServer({
    dir: ca.dir,
    listen: `${LISTEN_IP}:0`,
    svidTtlMs: 15 * 60_000,
    sans: [MAPPED_SAN],
    workers: 0,
    logger: silentLogger(),
    metrics: new Metrics(),
  });
  bundlePem = (await loadCaMaterial(ca.dir)).bundle.toPem();
  return async () => {
    await server.close();
    ca.cleanup();
  };
});

/** The serving certificate, its chain verified against the bundle; the host name is checked by the test. */
function servedCertificate(): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: LISTEN_IP, port: server.port, ca: bundlePem, checkServerIdentity: () => undefined });
    socket.once('secureConnect', () => {
      resolve(new X509Certificate(socket.getPeerCertificate().raw));
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

describe('ca serve on a specific IP', () => {
  it('ok/the advertised URL and issuer name the IP it listens on', () => {
    expect(server.url).toBe(`https://${LISTEN_IP}:${server.port}`);
    expect(server.issuer).toBe(server.url);
  });

  it('ok/a client checking the host name reaches the issuer at the advertised URL', async () => {
    const agent = new Agent({ connect: { ca: bundlePem } });
    try {
      const response = await request(`${server.issuer}/.well-known/openid-configuration`, { dispatcher: agent });
      const body = (await response.body.json()) as { issuer?: string };
      expect(response.statusCode).toBe(200);
      expect(body.issuer).toBe(server.issuer);
    } finally {
      await agent.close();
    }
  });

  it('ok/the serving certificate names the listen IP and both loopbacks', async () => {
    const cert = await servedCertificate();
    expect(cert.checkIP(LISTEN_IP)).toBe(LISTEN_IP);
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkIP('::1')).toBe('::1');
  });

  it('ok/an IPv4-mapped --san is the address it spells', async () => {
    const cert = await servedCertificate();
    expect(cert.checkIP(MAPPED_SAN)).toBe(MAPPED_SAN);
  });

  it.skipIf(!HAVE_OPENSSL)('ok/openssl reads the listen IP and ::1 in subjectAltName', async () => {
    const cert = await servedCertificate();
    const result = spawnSync('openssl', ['x509', '-noout', '-ext', 'subjectAltName'], {
      input: cert.toString(),
      encoding: 'utf8',
    });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain(`IP Address:${LISTEN_IP}`);
    expect(result.stdout).toContain('IP Address:127.0.0.1');
    expect(result.stdout).toContain('IP Address:0:0:0:0:0:0:0:1');
  });
});
