// HTTPS to the Kubernetes API server (and the cluster's OIDC issuer) for `ca serve --k8s-*`: the discovery document,
// the JWKS and TokenReview. TLS trusts the cluster CA (`--k8s-ca-file`, re-read when it changes: the API server's
// CA can rotate) or, without it, the system roots. The bearer token is the CA's own service-account token, re-read
// from its file on every use (the kubelet rotates it) and sent only to the origins of the API server and of the
// issuer: a JWKS hosted elsewhere (a cloud bucket) never receives it. GETs go out without it first and repeat with
// it when the server asks (401/403: anonymous discovery is off in many clusters); TokenReview always carries it.
import { Agent, type Dispatcher, request } from 'undici';
import { checkFetchableUrl } from '../authn/fetch-json.js';
import { readSettingFile } from '../config/read-setting-file.js';
import { fileVersions } from '../platform/index.js';

export const DEFAULT_K8S_TOKEN_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/token';
export const DEFAULT_K8S_API_SERVER = 'https://kubernetes.default.svc';
const DEFAULT_TIMEOUT_MS = 5000;
const MAX_RESPONSE_BYTES = 512 * 1024;
/** A projected service-account token is a few KiB. */
const MAX_TOKEN_BYTES = 64 * 1024;

export type ClusterFailure = 'url' | 'network' | 'timeout' | 'status' | 'too_large' | 'invalid_json' | 'credentials';

export class ClusterApiError extends Error {
  override readonly name = 'ClusterApiError';
  constructor(
    readonly failure: ClusterFailure,
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface ClusterApiClientOptions {
  /** PEM file of the cluster CA; undefined trusts the system roots. */
  readonly caFile?: string;
  readonly tokenFile?: string;
  /** Origins (scheme://host:port) that may receive the bearer token. */
  readonly bearerOrigins: readonly string[];
  readonly timeoutMs?: number;
}

export interface ClusterResponse {
  readonly status: number;
  readonly json: unknown;
}

export class ClusterApiClient {
  readonly #caFile: string | undefined;
  readonly #tokenFile: string;
  readonly #bearerOrigins: ReadonlySet<string>;
  readonly #timeoutMs: number;
  /** Origins that answered 401/403 without the token: later GETs send it at once. */
  readonly #wantsBearer = new Set<string>();
  #agent: Agent | undefined;
  #caFingerprint = '';

  constructor(options: ClusterApiClientOptions) {
    this.#caFile = options.caFile;
    this.#tokenFile = options.tokenFile ?? DEFAULT_K8S_TOKEN_FILE;
    this.#bearerOrigins = new Set(options.bearerOrigins.map((url) => new URL(url).origin));
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** GET a JSON document; 200 only. */
  async getJson(url: string): Promise<unknown> {
    const origin = originOf(url);
    const mayBear = this.#bearerOrigins.has(origin);
    let response = await this.#send('GET', url, undefined, mayBear && this.#wantsBearer.has(origin));
    if ((response.status === 401 || response.status === 403) && mayBear && !this.#wantsBearer.has(origin)) {
      this.#wantsBearer.add(origin);
      response = await this.#send('GET', url, undefined, true);
    }
    if (response.status !== 200)
      throw new ClusterApiError('status', `GET ${url}: HTTP ${response.status}`, response.status);
    return response.json;
  }

  /** POST a JSON body with the bearer token (the API server's create verbs); any status is returned. */
  async postJson(url: string, body: unknown): Promise<ClusterResponse> {
    if (!this.#bearerOrigins.has(originOf(url))) {
      throw new ClusterApiError('url', `${url} is not the API server: the service-account token is not sent there`);
    }
    return this.#send('POST', url, JSON.stringify(body), true);
  }

  async close(): Promise<void> {
    await this.#agent?.destroy();
    this.#agent = undefined;
  }

  async #send(
    method: 'GET' | 'POST',
    url: string,
    body: string | undefined,
    bearer: boolean,
  ): Promise<ClusterResponse> {
    const problem = checkFetchableUrl(url);
    if (problem !== undefined) throw new ClusterApiError('url', problem);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (bearer) headers.authorization = `Bearer ${await this.#token()}`;
    const dispatcher = await this.#dispatcher();
    const signal = AbortSignal.timeout(this.#timeoutMs);
    let response: Dispatcher.ResponseData;
    try {
      response = await request(url, { method, headers, dispatcher, signal, ...(body === undefined ? {} : { body }) });
    } catch (cause) {
      if (signal.aborted)
        throw new ClusterApiError('timeout', `${method} ${url}: no answer within ${this.#timeoutMs} ms`);
      throw new ClusterApiError('network', `${method} ${url}: ${(cause as Error).message}`, undefined, { cause });
    }
    const text = await readLimited(response.body, url);
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch (cause) {
      if (response.statusCode < 300) {
        throw new ClusterApiError('invalid_json', `${method} ${url}: response is not JSON`, response.statusCode, {
          cause,
        });
      }
    }
    return { status: response.statusCode, json };
  }

  async #token(): Promise<string> {
    let text: string;
    try {
      // Bounded and regular files only: a FIFO at the path blocked every request that needs the token.
      text = readSettingFile(this.#tokenFile, {
        setting: '--k8s-token-file',
        what: 'service-account token file',
        maxBytes: MAX_TOKEN_BYTES,
        reason: 'k8s_token_unreadable',
      });
    } catch (cause) {
      throw new ClusterApiError('credentials', (cause as Error).message, undefined, { cause });
    }
    const token = text.trim();
    if (!/^[\x21-\x7e]+$/.test(token)) {
      throw new ClusterApiError('credentials', `${this.#tokenFile} does not hold a bearer token`);
    }
    return token;
  }

  /** An agent trusting the cluster CA as it is on disk now; rebuilt when the file changes. */
  async #dispatcher(): Promise<Agent> {
    const fingerprint = this.#caFile === undefined ? 'system' : fileVersions([this.#caFile]);
    if (this.#agent !== undefined && fingerprint === this.#caFingerprint) return this.#agent;
    let ca: string | undefined;
    if (this.#caFile !== undefined) {
      try {
        ca = readSettingFile(this.#caFile, { setting: '--k8s-ca-file', what: 'CA file', reason: 'k8s_ca_unreadable' });
      } catch (cause) {
        // Keep the agent built from the last readable CA file, if any: a rotation in progress.
        if (this.#agent !== undefined) return this.#agent;
        throw new ClusterApiError('credentials', (cause as Error).message, undefined, { cause });
      }
    }
    const previous = this.#agent;
    this.#agent = new Agent({
      // rejectUnauthorized explicit: left out, tls.connect takes it from NODE_TLS_REJECT_UNAUTHORIZED, and =0 in the
      // environment would make the CA trust any cluster JWKS and send its own bearer token to any server.
      connect: { timeout: this.#timeoutMs, rejectUnauthorized: true, ...(ca === undefined ? {} : { ca }) },
      headersTimeout: this.#timeoutMs,
      bodyTimeout: this.#timeoutMs,
    });
    this.#caFingerprint = fingerprint;
    previous?.close().catch(() => {});
    return this.#agent;
  }
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    throw new ClusterApiError('url', `${JSON.stringify(url.slice(0, 200))} is not a URL`);
  }
}

async function readLimited(body: Dispatcher.ResponseData['body'], url: string): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > MAX_RESPONSE_BYTES) {
      body.destroy();
      throw new ClusterApiError('too_large', `${url}: response larger than ${MAX_RESPONSE_BYTES} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
