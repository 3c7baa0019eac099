// The one HTTP client for the CA API, used by the sidecar agent and by `meshauth cert`: POST /v1/svid
// (bootstrap with a token, or renewal over mTLS), GET /v1/bundle and POST /v1/token (a JWT-SVID over mTLS). It
// authenticates the CA by its chain to the given roots AND its SPIFFE ID `spiffe://<td>/meshauth/ca` (never by
// hostname, never with verification off). It returns the CA's answer as parsed but unvalidated data: deciding
// whether to trust an SVID is the caller's job (svid-response.ts for the agent).
import type { IncomingMessage } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { type ConnectionOptions, createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import { DEFAULT_MAX_CONNECTION_WAIT_MS } from '../ca/connection-gate.js';
import { ERRORS, isErrorCode, MeshauthError } from '../errors/index.js';
import { caSpiffeId, SpiffeId, type TrustDomain } from '../identity/index.js';
import { parseCertificate, uriSans } from '../pki/index.js';
import { answerIdentityCheckWithLeaf, type LeafCertificate, protocolOptions } from '../tls/index.js';
import { CaIdentityError, type CaTlsFailure, caIdentityRefusal, caTlsFailureOf } from './ca-tls-failure.js';

/** The CA's answers are a few KiB; anything far larger is not a CA talking. */
const MAX_RESPONSE_BYTES = 256 * 1024;
const DEFAULT_TIMEOUT_MS = 10_000;
/**
 * Until the TLS handshake is done, the client waits longer than the CA's door makes a connection wait for its turn
 * (30 s under a storm, then it is closed): giving up earlier only rejoins the queue at its back, with a new
 * ClientHello for both sides to pay for.
 */
const DEFAULT_HANDSHAKE_TIMEOUT_MS = DEFAULT_MAX_CONNECTION_WAIT_MS + 5_000;

export interface CaConnection {
  readonly caUrl: string;
  readonly trustDomain: TrustDomain;
  /** PEM roots that must anchor the CA's serving certificate. */
  readonly bundlePem: string;
  /** The file bundlePem was read from, when it was: named by the refusal of a CA that does not chain to it. */
  readonly bundleFile?: string;
  /** The setting that named bundleFile (e.g. `ca.bundle`), named beside it. */
  readonly bundleSetting?: string;
  /** Client certificate chain and key for mTLS (renewal); omitted for bootstrap. */
  readonly clientCertPem?: string;
  readonly clientKeyPem?: string;
  /**
   * Longest silence once connected (waiting for the head, between body chunks); default 10 s. The whole answer must
   * also be in within twice it of the handshake's end.
   */
  readonly timeoutMs?: number;
  /** Longest time from the connect to the end of the TLS handshake; default 35 s (see above). */
  readonly handshakeTimeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface SvidResponse {
  readonly certChainPem: string[];
  readonly bundlePem: string[];
  readonly expiresAt: string;
  /** The CA's `Date` header, for clock-skew diagnostics. */
  readonly serverDate: Date | undefined;
}

export interface JwtSvidResponse {
  /** The JWT-SVID, compact JWS. Not verified here: the caller only forwards it. */
  readonly accessToken: string;
  readonly expiresIn: number;
  readonly serverDate: Date | undefined;
}

export interface BundleResponse {
  readonly bundlePem: string[];
  /** The CA's `spiffe_refresh_hint` in milliseconds, when it sent a positive whole number of seconds. */
  readonly refreshHintMs: number | undefined;
  readonly serverDate: Date | undefined;
}

/** POST /v1/svid: `token` for bootstrap, or the connection's client certificate for renewal. */
export async function requestSvid(
  connection: CaConnection,
  body: { readonly csrPem: string; readonly token?: string },
): Promise<SvidResponse> {
  const payload = body.token === undefined ? { csr: body.csrPem } : { csr: body.csrPem, token: body.token };
  const { json, serverDate } = await call(connection, 'POST', '/v1/svid', {
    contentType: 'application/json',
    text: JSON.stringify(payload),
  });
  const record = asRecord(json);
  const certChainPem = pemList(record.certChain, 'certChain');
  const bundlePem = pemList(record.bundle, 'bundle');
  if (typeof record.expiresAt !== 'string') malformed('expiresAt is missing');
  return { certChainPem, bundlePem, expiresAt: record.expiresAt, serverDate };
}

/** GET /v1/bundle: the CA's current trust bundle as a PEM list. */
export async function fetchBundle(connection: CaConnection): Promise<BundleResponse> {
  const { json, serverDate } = await call(connection, 'GET', '/v1/bundle');
  const record = asRecord(json);
  return { bundlePem: pemList(record.bundle, 'bundle'), refreshHintMs: refreshHintMs(record.spiffe), serverDate };
}

/** POST /v1/token: the OAuth 2.0 client-credentials grant; the connection's client certificate is the client. */
export async function requestJwtSvid(
  connection: CaConnection,
  request: { readonly audience: string },
): Promise<JwtSvidResponse> {
  const form = new URLSearchParams({ grant_type: 'client_credentials', audience: request.audience });
  const { json, serverDate } = await call(connection, 'POST', '/v1/token', {
    contentType: 'application/x-www-form-urlencoded',
    text: form.toString(),
  });
  const record = asRecord(json);
  if (typeof record.access_token !== 'string' || !/^[\w-]+\.[\w-]+\.[\w-]+$/.test(record.access_token)) {
    malformed('access_token is missing or not a compact JWT');
  }
  if (record.token_type !== 'Bearer') malformed('token_type is not Bearer');
  const expiresIn = typeof record.expires_in === 'number' ? record.expires_in : 0;
  return { accessToken: record.access_token, expiresIn, serverDate };
}

/** A hint that is absent or not a positive whole number of seconds is ignored: the agent keeps its own interval. */
function refreshHintMs(spiffe: unknown): number | undefined {
  if (typeof spiffe !== 'object' || spiffe === null) return undefined;
  const seconds = (spiffe as { spiffe_refresh_hint?: unknown }).spiffe_refresh_hint;
  return typeof seconds === 'number' && Number.isSafeInteger(seconds) && seconds > 0 ? seconds * 1000 : undefined;
}

/** The CA's Retry-After (429, 503) in milliseconds, when it sent one. */
export function caRetryAfterMsOf(error: unknown): number | undefined {
  if (!(error instanceof MeshauthError)) return undefined;
  const value = error.detail?.retryAfterMs;
  return typeof value === 'number' ? value : undefined;
}

/** The HTTP status of a CA rejection, or undefined when the CA did not answer with one. */
export function caStatusOf(error: unknown): number | undefined {
  if (!(error instanceof MeshauthError)) return undefined;
  const status = error.detail?.status;
  return typeof status === 'number' ? status : undefined;
}

/**
 * Why a join token the CA refused is not worth retrying. One text for the agent's log and `cert request`, which both
 * saw only "credential rejected": the CA tells a used token from an unknown one to its log alone.
 */
export const JOIN_TOKEN_SINGLE_USE = 'a join token is single-use, so a used one cannot bootstrap again';

/**
 * True for a call refused because the CA's certificate does not chain to the connection's trust bundle. Still
 * MESHAUTH_ERR_CA_UNAVAILABLE (reason `tls`) here, as the agent counts and retries it (a root rotation can bring the
 * missing root); a one-shot command may report it as the input error it is.
 */
export function caChainUntrusted(error: unknown): boolean {
  return (
    error instanceof MeshauthError && error.reason === 'tls' && caTlsFailureOf(error.cause)?.kind === 'untrusted_chain'
  );
}

/** The TLS identity check: the CA must present exactly one URI SAN, equal to its well-known SPIFFE ID. */
export function checkCaIdentity(trustDomain: TrustDomain, cert: LeafCertificate): Error | undefined {
  const expected = caSpiffeId(trustDomain);
  // The CA's serving certificate is the same for every request until it is re-issued: checked once per certificate
  // (keyed by its SHA-256 and the trust domain asked for; only a pass is remembered).
  const key = `${trustDomain.name} ${cert.fingerprint256}`;
  if (cert.fingerprint256 !== undefined && passedCaIdentity.has(key)) return undefined;
  try {
    const uris = uriSans(parseCertificate(new Uint8Array(cert.raw)));
    const id = uris.length === 1 ? SpiffeId.tryParse(uris[0] as string) : undefined;
    if (id?.equals(expected)) {
      if (cert.fingerprint256 !== undefined) {
        if (passedCaIdentity.size >= 16) passedCaIdentity.clear();
        passedCaIdentity.add(key);
      }
      return undefined;
    }
    return new CaIdentityError(expected, uris);
  } catch (cause) {
    return new CaIdentityError(expected, undefined, cause);
  }
}

const passedCaIdentity = new Set<string>();

async function call(
  connection: CaConnection,
  method: 'GET' | 'POST',
  path: string,
  body?: { readonly contentType: string; readonly text: string },
): Promise<{ json: unknown; serverDate: Date | undefined }> {
  const url = endpoint(connection.caUrl, path);
  const timeoutMs = connection.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let secureContext: SecureContext;
  try {
    secureContext = clientContext(connection);
  } catch (cause) {
    // Roots, certificate or key that OpenSSL cannot load: nothing was sent.
    throw new MeshauthError('MESHAUTH_ERR_CA_UNAVAILABLE', `CA ${url} failed TLS authentication: ${describe(cause)}`, {
      reason: 'tls',
      cause,
    });
  }
  const { signal } = connection;
  signal?.throwIfAborted();
  // One connection per call (agent: false): the trust anchors and the client certificate change with every
  // rotation, and a renewal must present the SVID it renews, never a session resumed from an older one.
  const options: RequestOptions & Pick<ConnectionOptions, 'secureContext'> = {
    method,
    agent: false,
    secureContext,
    // Explicit, so NODE_TLS_REJECT_UNAUTHORIZED=0 in the environment cannot turn the CA's checks off.
    rejectUnauthorized: true,
    checkServerIdentity: (_host: string, cert: LeafCertificate) => checkCaIdentity(connection.trustDomain, cert),
    headers:
      body === undefined
        ? { accept: 'application/json' }
        : {
            'content-type': body.contentType,
            'content-length': Buffer.byteLength(body.text),
            accept: 'application/json',
          },
    ...(signal === undefined ? {} : { signal }),
  };
  const request = httpsRequest(url, options);
  // Two limits: one wall-clock timer until the handshake is done (a socket idle timer would be suppressed once
  // while the request waits queued behind the handshake, doubling it), then the socket's idle timer.
  const handshakeTimeoutMs = connection.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  let stalled: Error | undefined;
  const giveUp = (error: Error) => {
    stalled = error;
    request.destroy(error);
  };
  request.once('socket', (socket: TLSSocket) => {
    answerIdentityCheckWithLeaf(socket);
    const handshake = setTimeout(() => giveUp(noHandshake(url, handshakeTimeoutMs)), handshakeTimeoutMs);
    socket.once('close', () => clearTimeout(handshake));
    socket.once('secureConnect', () => {
      clearTimeout(handshake);
      socket.setTimeout(timeoutMs, () => giveUp(timedOut(url, timeoutMs)));
      // The idle timer alone never fires for a server that sends a byte now and then: a CA sends its few KiB at
      // once, so an answer still unfinished after twice the idle limit is not coming, and waiting on it would hold
      // the agent's one rotation until past its SVID's expiry.
      const answerMs = 2 * timeoutMs;
      const answer = setTimeout(() => giveUp(unfinished(url, answerMs)), answerMs);
      socket.once('close', () => clearTimeout(answer));
    });
  });
  const answered = new Promise<IncomingMessage>((resolve, reject) => {
    request.once('response', resolve);
    // Kept after the answer: a later error (a cut body) reaches the body reader; rejecting again is a no-op.
    request.on('error', reject);
  });
  request.end(body?.text);
  let response: IncomingMessage;
  try {
    response = await answered;
  } catch (cause) {
    if (signal?.aborted) throw signal.reason;
    const tls = caTlsFailureOf(cause);
    if (tls === undefined) {
      throw new MeshauthError('MESHAUTH_ERR_CA_UNAVAILABLE', `CA ${url} unreachable: ${describe(cause)}`, {
        reason: 'unreachable',
        cause,
      });
    }
    const message = `CA ${url} failed TLS authentication: ${whyRefused(connection, tls, cause)}`;
    throw new MeshauthError('MESHAUTH_ERR_CA_UNAVAILABLE', message, { reason: 'tls', cause });
  }
  try {
    let text: string;
    try {
      text = await readLimited(response);
    } catch (cause) {
      if (signal?.aborted) throw signal.reason;
      if (cause instanceof MeshauthError) throw cause;
      // The answer was cut: the stall timer, or the connection closed before the body ended.
      throw new MeshauthError('MESHAUTH_ERR_CA_UNAVAILABLE', `CA ${url} unreachable: ${describe(stalled ?? cause)}`, {
        reason: 'unreachable',
        cause,
      });
    }
    const serverDate = parseDate(response.headers.date);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    const status = response.statusCode ?? 0;
    if (status !== 200) throw rejection(url, status, json, parseRetryAfter(response.headers['retry-after']));
    if (json === undefined) malformed('response body is not JSON');
    return { json, serverDate };
  } finally {
    request.destroy();
  }
}

/**
 * OpenSSL's words alone ("unable to get local issuer certificate", "unsuitable certificate purpose") read as a CA that
 * is down or broken: they come after words that say what is wrong and what mends it.
 */
function whyRefused(connection: CaConnection, tls: CaTlsFailure, cause: unknown): string {
  switch (tls.kind) {
    case 'untrusted_chain':
      return (
        `its certificate does not chain to any root in the trust bundle${bundleNamed(connection)} ` +
        `(${describe(cause)}): use the bundle.pem of the CA at this URL, or the URL of the CA that bundle is from`
      );
    case 'certificate':
      return `${tls.advice} (${describe(cause)})`;
    case 'identity':
      // The trust domain comes from the config when a setting named the bundle, else from the bundle's roots.
      return caIdentityRefusal(
        connection.caUrl,
        tls,
        connection.bundleSetting === undefined ? 'the trust domain of the trust bundle' : undefined,
      );
    default:
      return describe(cause);
  }
}

function bundleNamed(connection: CaConnection): string {
  const { bundleFile, bundleSetting } = connection;
  if (bundleFile === undefined) return '';
  return bundleSetting === undefined ? ` ${bundleFile}` : ` ${bundleFile} (${bundleSetting})`;
}

function unfinished(url: string, timeoutMs: number): Error {
  return Object.assign(new Error(`no complete answer from ${url} within ${timeoutMs} ms`), { code: 'ETIMEDOUT' });
}

function noHandshake(url: string, timeoutMs: number): Error {
  return Object.assign(new Error(`no TLS handshake with ${url} within ${timeoutMs} ms`), { code: 'ETIMEDOUT' });
}

function timedOut(url: string, timeoutMs: number): Error {
  return Object.assign(new Error(`no progress from ${url} for ${timeoutMs} ms`), { code: 'ETIMEDOUT' });
}

/**
 * Contexts without a client certificate (bootstrap, bundle refresh), by their roots: building one parses every
 * root, and retries and refreshes present the same roots. A renewal's context holds the SVID being replaced and is
 * used once, so it is built each time.
 */
const rootsOnlyContexts = new Map<string, SecureContext>();
const MAX_ROOTS_ONLY_CONTEXTS = 4;
/**
 * The CA's own TLS profile (TLS 1.2 allowed, as the CA accepts it; the mesh's key-exchange groups). Node's default
 * groups would also make a post-quantum key share in every ClientHello, which the CA never selects: ~0.1 ms of CPU
 * per connection thrown away.
 */
const CA_PROFILE = protocolOptions({ tls12: true });

function clientContext(connection: CaConnection): SecureContext {
  const { bundlePem, clientCertPem, clientKeyPem } = connection;
  if (clientCertPem !== undefined || clientKeyPem !== undefined) {
    return createSecureContext({ ...CA_PROFILE, ca: bundlePem, cert: clientCertPem, key: clientKeyPem });
  }
  let context = rootsOnlyContexts.get(bundlePem);
  if (context === undefined) {
    context = createSecureContext({ ...CA_PROFILE, ca: bundlePem });
    if (rootsOnlyContexts.size >= MAX_ROOTS_ONLY_CONTEXTS) rootsOnlyContexts.clear();
    rootsOnlyContexts.set(bundlePem, context);
  }
  return context;
}

function endpoint(caUrl: string, path: string): string {
  let base: URL;
  try {
    base = new URL(caUrl);
  } catch (cause) {
    throw new MeshauthError('MESHAUTH_ERR_CONFIG_INVALID', `CA URL ${JSON.stringify(caUrl)} is not a URL`, { cause });
  }
  if (base.protocol !== 'https:') {
    throw new MeshauthError('MESHAUTH_ERR_CONFIG_INVALID', `CA URL must use https: (got ${base.protocol})`);
  }
  return `${base.origin}${base.pathname.replace(/\/+$/, '')}${path}`;
}

async function readLimited(body: AsyncIterable<Buffer | Uint8Array> & { destroy?: () => void }): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > MAX_RESPONSE_BYTES) {
      body.destroy?.();
      malformed(`response larger than ${MAX_RESPONSE_BYTES} bytes`);
    }
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The codes `ca serve` answers with: its own, the CSR and ID checks it runs, and the refusals before its handler. */
const CA_ANSWER_CODES =
  /^MESHAUTH_ERR_(?:CA_[A-Z_]+|CSR_INVALID|SPIFFE_ID_INVALID|KEY_TYPE|HEADERS_TOO_LARGE|REQUEST_TIMEOUT|EXPECTATION_FAILED)$/;

function rejection(url: string, status: number, json: unknown, retryAfterMs?: number): MeshauthError {
  const record = json !== null && typeof json === 'object' ? (json as Record<string, unknown>) : {};
  const caCode = typeof record.code === 'string' ? record.code.slice(0, 100) : undefined;
  // `message` on most endpoints; the OAuth `error_description` on /v1/token.
  const said = typeof record.message === 'string' ? record.message : record.error_description;
  // Printable ASCII only: it reaches a terminal through the CLI.
  const caMessage = typeof said === 'string' ? said.slice(0, 200).replace(/[^\x20-\x7e]/g, '?') : undefined;
  const detail = { status, caCode, caMessage, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
  const text = `CA ${url} answered ${status}${caCode === undefined ? '' : ` ${caCode}`}${caMessage === undefined ? '' : `: ${caMessage}`}`;
  if (status >= 500 || status === 429) {
    return new MeshauthError('MESHAUTH_ERR_CA_UNAVAILABLE', text, { reason: `http_${status}`, detail });
  }
  // Keep the CA's own code when it is one a CA answers with (e.g. MESHAUTH_ERR_CA_UNAUTHENTICATED for a used join
  // token). Any other code would make the CLI report, and exit, as if something else had failed: a local mistake (a
  // wrong flag, an unreadable file: no HTTP status) or another component's refusal (a policy's 403).
  const code =
    caCode !== undefined && isErrorCode(caCode) && ERRORS[caCode].status > 0 && CA_ANSWER_CODES.test(caCode)
      ? caCode
      : 'MESHAUTH_ERR_CA_RESPONSE_INVALID';
  return new MeshauthError(code, text, { reason: `http_${status}`, detail });
}

function asRecord(json: unknown): Record<string, unknown> {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) malformed('response is not a JSON object');
  return json as Record<string, unknown>;
}

function pemList(value: unknown, field: string): string[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > 16) {
    malformed(`${field} must be a non-empty array of PEM certificates`);
  }
  return value.map((item) => {
    if (typeof item !== 'string') malformed(`${field} must contain only strings`);
    return item;
  });
}

/** Retry-After is delay-seconds or an HTTP-date; anything else (or a negative delay) is ignored. */
function parseRetryAfter(header: string | string[] | undefined): number | undefined {
  if (typeof header !== 'string') return undefined;
  const trimmed = header.trim();
  if (/^\d{1,9}$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - Date.now());
}

function parseDate(header: string | string[] | undefined): Date | undefined {
  if (typeof header !== 'string') return undefined;
  const date = new Date(header);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? `${code}: ${error.message}` : error.message;
}

function malformed(message: string): never {
  throw new MeshauthError('MESHAUTH_ERR_CA_RESPONSE_INVALID', `CA response invalid: ${message}`, {
    reason: 'malformed',
  });
}
