// Hostile input on the CA API that ca-server/ca-token leave out: an oversized `POST /v1/token` body is refused before
// it is parsed (413 in the OAuth error shape, counted), and the CA's TLS listener refuses TLS ≤ 1.1, CBC-only clients
// and client-initiated renegotiation.
import { Readable } from 'node:stream';
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { Agent, request } from 'undici';
import { beforeAll, describe, expect, it } from 'vitest';
import { type CaServer, loadCaMaterial, startCaServer } from '../../src/ca/index.js';
import { SpiffeId } from '../../src/identity/index.js';
import { createLeafCertificate, exportPrivateKeyPem, generateKeyPair } from '../../src/pki/index.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { makeCaDir } from '../helpers/ca-dir.js';
import { caRejections } from '../helpers/ca-metrics.js';

let server: CaServer;
let metrics: Metrics;
let bundlePem: string;
/** Presents a valid workload SVID: the body limit is checked after client authentication (token-endpoint.ts). */
let workload: Agent;

beforeAll(async () => {
  const ca = await makeCaDir();
  metrics = new Metrics();
  server = await startCaServer({
    dir: ca.dir,
    listen: '127.0.0.1:0',
    svidTtlMs: 10 * 60_000,
    logger: silentLogger(),
    metrics,
  });
  const material = await loadCaMaterial(ca.dir);
  bundlePem = material.bundle.toPem();
  const keys = await generateKeyPair('p256');
  const leaf = await createLeafCertificate({
    id: SpiffeId.parse('spiffe://example.org/ns/shop/sa/web'),
    publicKey: keys.publicKey,
    issuer: material.issuer,
    now: new Date(),
    ttlMs: 10 * 60_000,
  });
  workload = new Agent({
    connect: {
      ca: bundlePem,
      cert: `${leaf.toString('pem')}\n${material.intermediatePem}`,
      key: await exportPrivateKeyPem(keys.privateKey),
    },
  });
  return async () => {
    await workload.close();
    await server.close();
    ca.cleanup();
  };
});

const rejected = (reason: string): Promise<number> => caRejections(metrics, reason);

describe('POST /v1/token body limits', () => {
  it.each([
    ['fail/declared Content-Length over 8 KiB', false],
    ['fail/chunked body over 8 KiB', true],
  ])('%s → 413 MESHAUTH_ERR_CA_BODY_TOO_LARGE (OAuth shape), counted', async (_name, chunked) => {
    const form = `grant_type=client_credentials&audience=${'a'.repeat(9 * 1024)}`;
    const before = await rejected('body_too_large');
    const response = await request(`${server.url}/v1/token`, {
      method: 'POST',
      dispatcher: workload,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      // Readable.from: no Content-Length, so undici sends the body chunked and the limit applies while reading.
      body: chunked ? Readable.from([Buffer.from(form)]) : form,
    });
    const json = (await response.body.json()) as Record<string, unknown>;
    expect(response.statusCode).toBe(413);
    expect(json).toMatchObject({ error: 'invalid_request', code: 'MESHAUTH_ERR_CA_BODY_TOO_LARGE' });
    expect(json.access_token).toBeUndefined();
    expect(await rejected('body_too_large')).toBe(before + 1);
  });
});

describe('CA TLS listener', () => {
  const connect = (options: ConnectionOptions): TLSSocket =>
    tlsConnect({
      host: '127.0.0.1',
      port: Number(new URL(server.url).port),
      ca: [bundlePem],
      servername: 'localhost',
      ...options,
    });

  it.each<[string, ConnectionOptions, RegExp]>([
    ['ok/TLS 1.2 with an ECDHE + AEAD suite', { maxVersion: 'TLSv1.2' }, /^connected TLSv1\.2$/],
    [
      'fail/only CBC suites offered (T03)',
      { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:AES128-SHA:AES256-SHA256' },
      /HANDSHAKE_FAILURE/,
    ],
    [
      'fail/TLS 1.1 at most (T01)',
      { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' },
      /PROTOCOL_VERSION/,
    ],
  ])('%s', async (_name, options, expected) => {
    const outcome = await new Promise<string>((resolve) => {
      const socket = connect(options);
      socket.setTimeout(5_000, () => socket.destroy(new Error('timeout')));
      socket.once('secureConnect', () => {
        resolve(`connected ${socket.getProtocol()}`);
        socket.destroy();
      });
      socket.once('error', (error: Error & { code?: string }) => resolve(error.code ?? error.message));
    });
    expect(outcome).toMatch(expected);
  });

  it('fail/client-initiated renegotiation is refused (T04: a renewal authenticates by the handshake certificate)', async () => {
    const socket = connect({ maxVersion: 'TLSv1.2' });
    let socketError = '';
    socket.on('error', (error: Error & { code?: string }) => {
      socketError = `${error.code ?? ''} ${error.message}`;
    });
    socket.setTimeout(5_000, () => socket.destroy());
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
    let renegotiated = false;
    socket.renegotiate({}, (error) => {
      renegotiated = error === null || error === undefined;
      socket.destroy();
    });
    await closed;
    expect(renegotiated).toBe(false);
    expect(socketError).toMatch(/no renegotiation/i);
  });
});
