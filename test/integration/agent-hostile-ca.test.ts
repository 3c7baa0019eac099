// An Agent against a hostile or broken CA: an HTTPS server holding a serving certificate for the CA's SPIFFE ID
// under the agent's own bundle (TLS succeeds, as for a compromised or buggy replica), whose answers to POST
// /v1/svid and GET /v1/bundle the test scripts. Whatever it answers, the agent keeps serving with the SVID it has,
// counts the refusal and says why in a log line, and tries again before that SVID expires.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { importPrivateKeyPem, KEY_ALGORITHMS, randomSerialHex, verifyCsrPem, x509 } from '../../src/pki/index.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';
import { type Cleanup, rotations, runCleanups, startAgent } from '../integration/agent-harness.js';

type Handler = (request: IncomingMessage, body: string, response: ServerResponse) => void | Promise<void>;

let ca: TestCa;
let server: Server;
let caUrl: string;
let handler: Handler;
/** Renewal comes at about half of it: 3 s into a test. */
const SVID_TTL_MS = 6_000;
const cleanups: Cleanup[] = [];

/** A leaf for the CSR's key, signed by `issuer` (the test CA's intermediate by default). */
async function leafFor(
  csrPem: string,
  options: {
    id?: string;
    notBefore?: Date;
    notAfter?: Date;
    issuer?: { cert: x509.X509Certificate; key: CryptoKey };
  } = {},
): Promise<x509.X509Certificate> {
  const csr = await verifyCsrPem(csrPem);
  const issuer = options.issuer ?? {
    cert: ca.intermediate,
    key: (await importPrivateKeyPem(ca.intermediateKeyPem)).privateKey,
  };
  const now = Date.now();
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerialHex(),
    subject: '',
    issuer: issuer.cert.subjectName,
    notBefore: options.notBefore ?? new Date(now - 60_000),
    notAfter: options.notAfter ?? new Date(now + SVID_TTL_MS),
    signingAlgorithm: KEY_ALGORITHMS.p256.sign,
    publicKey: csr.publicKey,
    signingKey: issuer.key,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
      new x509.SubjectAlternativeNameExtension(
        [{ type: 'url', value: options.id ?? ca.idFor('/ns/shop/sa/orders') }],
        true,
      ),
    ],
  });
}

/** The honest answer: a short-lived SVID for the CSR's key under the test CA's intermediate. */
const honest: Handler = async (request, body, response) => {
  if (request.method === 'POST') {
    const leaf = await leafFor((JSON.parse(body) as { csr: string }).csr);
    response.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        certChain: [leaf.toString('pem'), ca.intermediatePem],
        bundle: [ca.rootPem],
        expiresAt: leaf.notAfter.toISOString(),
      }),
    );
    return;
  }
  response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bundle: [ca.rootPem] }));
};

beforeAll(async () => {
  ca = await TestCa.create();
  const serving = await ca.issue({ id: ca.idFor('/meshauth/ca'), ipAddresses: ['127.0.0.1'], ttlMs: 3600_000 });
  server = createServer({ cert: serving.chainPem, key: serving.keyPem }, (request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      void Promise.resolve(handler(request, Buffer.concat(chunks).toString('utf8'), response)).catch(() =>
        response.destroy(),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  caUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(async () => {
  await runCleanups(cleanups);
  server.closeAllConnections();
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

/** An agent that bootstrapped against the honest CA; `then` takes over for every later answer. */
async function bootstrapped(then: Handler, overrides: { requestTimeoutMs?: number } = {}) {
  handler = honest;
  const harness = startAgent({ url: caUrl, bundleFile: '' }, 'join-token', cleanups, {
    bundlePem: ca.bundlePem,
    bundleRefreshMs: 3_600_000,
    ...overrides,
  });
  await harness.agent.whenReady();
  handler = then;
  return harness;
}

describe('agent against a CA that never finishes its answer', () => {
  it('fail/a renewal answer dripped one byte at a time is given up before the SVID expires', async () => {
    const drip: Handler = (request, _body, response) => {
      if (request.method !== 'POST') return;
      response.writeHead(200, { 'content-type': 'application/json' });
      const timer = setInterval(() => response.write(' '), 50);
      response.on('close', () => clearInterval(timer));
    };
    const { holder, metrics, logs } = await bootstrapped(drip, { requestTimeoutMs: 300 });
    const first = holder.current?.svid;
    // The renewal's answer never ends, its bytes coming faster than the idle timer: the attempt must still fail
    // (and be retried) while the SVID is valid.
    await waitFor('a failed renewal', async () => (await rotations(metrics, 'failure')) >= 1, SVID_TTL_MS - 500);
    expect(first !== undefined && first.remainingMs(new Date()) > 0).toBe(true);
    expect(holder.current?.svid).toBe(first);
    const line = logs.find((l) => l.msg.startsWith('SVID renewal failed'));
    expect(line?.code).toBe('MESHAUTH_ERR_CA_UNAVAILABLE');
    expect(line?.error).toContain('no complete answer');
  });
});
