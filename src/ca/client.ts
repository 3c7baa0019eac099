// Client of the CA API for workloads and sidecars: requests an SVID (join token, or renewal over mTLS with the
// current SVID) and fetches the bundle. The CA server is verified by the trust bundle and by its SPIFFE ID
// spiffe://<td>/meshauth/ca (security.md A15), never by plaintext or by a skipped check. No CLI concerns here.
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { Agent, request } from 'undici';
import { isErrorCode, MeshauthError } from '../errors/index.js';
import { caSpiffeId, TrustDomain } from '../identity/index.js';
import { parseCertificate, parseCertificatesPem, uriSans } from '../pki/index.js';

const DEFAULT_TIMEOUT_MS = 10_000;
const MAX_RESPONSE_BYTES = 256 * 1024;

export interface CaConnection {
  /** Base URL of the CA, e.g. `https://ca.mesh:8443`. */
  readonly caUrl: string;
  /** PEM of every trusted root (the CA's bundle.pem). */
  readonly bundlePem: string;
  readonly timeoutMs?: number;
}

export interface RequestSvidOptions extends CaConnection {
  readonly csrPem: string;
  /** Join token for bootstrap; omit to renew with the client certificate. */
  readonly token?: string;
  /** Current SVID chain and key, presented in the TLS handshake for renewal. */
  readonly clientCertPem?: string;
  readonly clientKeyPem?: string;
}

export interface SvidResponse {
  /** Leaf first, then the intermediate. */
  readonly certChainPem: string[];
  readonly bundlePem: string[];
  readonly expiresAt: Date;
}

export async function requestSvid(options: RequestSvidOptions): Promise<SvidResponse> {
  const body: Record<string, string> = { csr: options.csrPem };
  if (options.token !== undefined) body.token = options.token;
  const json = await callCa(options, '/v1/svid', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(body),
    ...(options.clientCertPem === undefined ? {} : { cert: options.clientCertPem }),
    ...(options.clientKeyPem === undefined ? {} : { key: options.clientKeyPem }),
  });
  const { certChain, bundle, expiresAt } = (json ?? {}) as Record<string, unknown>;
  const expires = typeof expiresAt === 'string' ? new Date(expiresAt) : undefined;
  if (!isPemList(certChain) || certChain.length < 1 || !isPemList(bundle) || expires === undefined) {
    throw responseInvalid('SVID response lacks certChain, bundle or expiresAt');
  }
  if (Number.isNaN(expires.getTime())) throw responseInvalid('SVID response has an invalid expiresAt');
  return { certChainPem: certChain, bundlePem: bundle, expiresAt: expires };
}

/** The CA's current trust bundle as a list of root PEMs. */
export async function fetchBundle(options: CaConnection): Promise<string[]> {
  const json = await callCa(options, '/v1/bundle', { method: 'GET', headers: { accept: 'application/json' } });
  const bundle = (json as { bundle?: unknown } | undefined)?.bundle;
  if (!isPemList(bundle) || bundle.length === 0) throw responseInvalid('bundle response lacks a bundle');
  return bundle;
}

interface CallOptions {
  readonly method: 'GET' | 'POST';
  readonly headers: Record<string, string>;
  readonly body?: string;
  readonly cert?: string;
  readonly key?: string;
}

async function callCa(connection: CaConnection, path: string, call: CallOptions): Promise<unknown> {
  const timeoutMs = connection.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const expectedId = expectedCaId(connection.bundlePem);
  const agent = new Agent({
    connectTimeout: timeoutMs,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connect: {
      ca: connection.bundlePem,
      ...(call.cert === undefined ? {} : { cert: call.cert }),
      ...(call.key === undefined ? {} : { key: call.key }),
      checkServerIdentity: (host: string, cert: PeerCertificate) => verifyCaIdentity(host, cert, expectedId),
    },
  });
  try {
    let response: Awaited<ReturnType<typeof request>>;
    try {
      response = await request(new URL(path, connection.caUrl), {
        dispatcher: agent,
        method: call.method,
        headers: call.headers,
        ...(call.body === undefined ? {} : { body: call.body }),
      });
    } catch (cause) {
      throw new MeshauthError(
        'MESHAUTH_ERR_CA_UNAVAILABLE',
        `cannot reach the CA at ${connection.caUrl}: ${(cause as Error).message}`,
        { reason: 'network', cause },
      );
    }
    const text = await readText(response.body);
    const json = parseJson(text);
    if (response.statusCode >= 200 && response.statusCode < 300) {
      if (json === undefined) throw responseInvalid('CA response is not JSON');
      return json;
    }
    throw errorFromResponse(response.statusCode, json);
  } finally {
    await agent.close().catch(() => undefined);
  }
}

/** The CA's serving identity, derived from the bundle roots' trust-domain URI SAN; undefined if they name none. */
function expectedCaId(bundlePem: string): string | undefined {
  for (const root of parseCertificatesPem(bundlePem)) {
    const uri = uriSans(root)[0];
    if (uri !== undefined) return caSpiffeId(TrustDomain.parse(uri)).toString();
  }
  return undefined;
}

function verifyCaIdentity(host: string, cert: PeerCertificate, expectedId: string | undefined): Error | undefined {
  if (expectedId === undefined) return checkServerIdentity(host, cert);
  const uris = cert.raw === undefined ? [] : uriSans(parseCertificate(new Uint8Array(cert.raw)));
  if (uris.length === 1 && uris[0] === expectedId) return undefined;
  return new Error(`CA server certificate is not ${expectedId}`);
}

function errorFromResponse(status: number, json: unknown): MeshauthError {
  const { code, message } = (json ?? {}) as { code?: unknown; message?: unknown };
  const text = typeof message === 'string' ? message.slice(0, 200) : `HTTP ${status}`;
  if (status >= 500) {
    return new MeshauthError('MESHAUTH_ERR_CA_UNAVAILABLE', `CA answered ${status}: ${text}`, {
      reason: 'server_error',
    });
  }
  if (typeof code === 'string' && isErrorCode(code)) {
    return new MeshauthError(code, `CA rejected the request (${status}): ${text}`, { reason: 'ca_rejected' });
  }
  return responseInvalid(`CA answered ${status} without an error code`);
}

async function readText(body: AsyncIterable<Buffer>): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > MAX_RESPONSE_BYTES) throw responseInvalid('CA response too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isPemList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string' && v.includes('-----BEGIN CERTIFICATE-----'));
}

function responseInvalid(message: string): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_CA_RESPONSE_INVALID', message, { reason: 'response_invalid' });
}
