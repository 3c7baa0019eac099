// The injection webhook's HTTPS listener: POST /mutate (AdmissionReview → reviewAdmission), GET /healthz,
// GET /metrics. The serving certificate and key are re-read when their files change (a Kubernetes Secret volume
// swaps a symlink, so the files are polled with stat rather than watched); a pair that does not load keeps the old
// one serving, with a warning and a metric. Review bodies are buffered whole before they are parsed: the bytes
// buffered across all requests at once are bounded (a budget, of which one client address may hold half), past
// which a review is refused with 503. Connections are capped the same way (webhook-connections.ts).
import { stat } from 'node:fs/promises';
import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { createSecureContext } from 'node:tls';
import { readSettingFile } from '../config/read-setting-file.js';
import { MeshauthError } from '../errors/index.js';
import {
  addTo,
  clientAddress,
  clientSourceKey,
  listenOn,
  SingleFlight,
  sweepTimeoutsWhileConnected,
} from '../platform/index.js';
import { adminRequestRefused, guardAdminRequests } from '../telemetry/admin-connections.js';
import { AdminRefusals } from '../telemetry/admin-refusals.js';
import { sendAdminAnswer } from '../telemetry/admin-server.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { RateLimitedLog } from '../telemetry/rate-limited-log.js';
import { protocolOptions } from '../tls/tls-profile.js';
import { reviewAdmission } from './inject-admission.js';
import type { InjectConfig } from './inject-config.js';
import { guardWebhookConnections, WEBHOOK_MAX_CONNECTIONS } from './webhook-connections.js';

export interface WebhookServerOptions {
  readonly host: string;
  readonly port: number;
  readonly certFile: string;
  readonly keyFile: string;
  readonly config: InjectConfig;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** How often the certificate files are checked for a change. Default 5 s. */
  readonly reloadIntervalMs?: number;
  /** Review body bytes held at once across all requests (one client address: half). Default REVIEW_BYTES_IN_FLIGHT. */
  readonly maxReviewBytesInFlight?: number;
  /** Connections held at once (one client address: half). Default WEBHOOK_MAX_CONNECTIONS. */
  readonly maxConnections?: number;
  /** Time a connection has to complete its TLS handshake. Default WEBHOOK_HANDSHAKE_TIMEOUT_MS. */
  readonly handshakeTimeoutMs?: number;
}

/** The API server sends a pod or service; even a large pod spec is far below this. */
const MAX_REVIEW_BYTES = 4 * 1024 * 1024;
/**
 * Body bytes buffered at once across all reviews. Each review is parsed and answered synchronously, one at a time,
 * so the others only wait as buffers, and without a bound they add up: 30 concurrent reviews of 2.7 MB took the
 * webhook past 400 MiB where its Deployment allows 192 MiB. It idles near 100 MiB and handling one review at the cap
 * can take tens of MiB of heap, so little is left for waiting bodies: three reviews at the cap (one handled, two
 * arriving). Ordinary pod reviews (tens of KiB) still fit by the hundred, so a burst of pod creations is not refused.
 */
export const REVIEW_BYTES_IN_FLIGHT = 3 * MAX_REVIEW_BYTES;
/**
 * What one client address may hold of the budget. The port is open to every pod: bytes are reserved as they arrive,
 * so holding them costs sending them, but a pod that sent bodies and stalled would still keep the API server's own
 * reviews out of the whole budget until the request timeout ended its requests. The API server keeps the other half.
 */
const SOURCE_SHARE = 0.5;
/** What the API server's client may wait before it asks again (its call timeout is seconds). */
const OVERLOADED_RETRY_AFTER_S = 1;
const OVERLOAD_LOG_INTERVAL_MS = 10_000;
/** A review's whole request (headers and body) must arrive within this; close() waits for no longer. */
const REQUEST_TIMEOUT_MS = 10_000;
/**
 * How often Node enforces the request and headers timeouts. Its default of 30 s let a request that stopped sending
 * keep its connection, and the body bytes reserved for it, for up to 40 s instead of 10.
 */
const TIMEOUT_CHECK_INTERVAL_MS = 1_000;
const DEFAULT_RELOAD_INTERVAL_MS = 5_000;
/**
 * The API server finishes its handshake at once. Node's default of 120 s let a connection that sent no ClientHello
 * keep its place (and 10 KB or more) for two minutes, out of reach of the request timeouts, which start after it.
 */
export const WEBHOOK_HANDSHAKE_TIMEOUT_MS = 5_000;
// The API server speaks TLS 1.3, older ones 1.2: AEAD suites of both.
const TLS = protocolOptions({ tls12: true });

interface KeyPair {
  readonly cert: string;
  readonly key: string;
}

export class WebhookServer {
  readonly #options: WebhookServerOptions;
  #server: Server | undefined;
  readonly #refusals: AdminRefusals;
  #timer: NodeJS.Timeout | undefined;
  #signature = '';
  #port = 0;
  readonly #check = new SingleFlight(() => this.#reloadIfChanged());
  readonly #budget: ByteBudget;
  readonly #overloadLog: RateLimitedLog;
  /** Connections closed for pipelining or for not reading (guardAdminRequests). */
  readonly #connectionLog: RateLimitedLog;
  readonly #tooLargeLog: RateLimitedLog;
  readonly #contentTypeLog: RateLimitedLog;
  readonly #notReviewLog: RateLimitedLog;
  readonly #handshakeLog: RateLimitedLog;
  /** Requests not answered yet: close() lets them finish, and their answers end the connection. */
  readonly #unanswered = new Set<ServerResponse>();
  #closing = false;

  constructor(options: WebhookServerOptions) {
    this.#options = options;
    this.#refusals = new AdminRefusals(options.metrics, options.logger);
    this.#budget = new ByteBudget(options.maxReviewBytesInFlight ?? REVIEW_BYTES_IN_FLIGHT, SOURCE_SHARE);
    // Anyone who reaches the port can cause a 503, 413, 415 or a body that is no AdmissionReview in a loop: one line
    // per window, each kind in a window of its own, so a flood of one does not hide the first line of another.
    const refusedLog = () =>
      new RateLimitedLog(options.logger, options.metrics, 'admission_review_refused', OVERLOAD_LOG_INTERVAL_MS);
    this.#overloadLog = refusedLog();
    this.#connectionLog = new RateLimitedLog(
      options.logger,
      options.metrics,
      'connection_refused',
      OVERLOAD_LOG_INTERVAL_MS,
    );
    this.#tooLargeLog = refusedLog();
    this.#contentTypeLog = refusedLog();
    this.#notReviewLog = refusedLog();
    this.#handshakeLog = new RateLimitedLog(
      options.logger,
      options.metrics,
      'tls_handshake_failed',
      OVERLOAD_LOG_INTERVAL_MS,
    );
    // The alerts take increase() of the error and failure series. A series born at 1 on the first event has no
    // earlier sample to rise from: that first error (a pod admitted without its sidecar) or failed reload (reported
    // once per change) would never fire. Every result is exposed at 0 from the start.
    for (const result of ['injected', 'skipped', 'error', 'invalid'] as const) {
      options.metrics.webhookReviews.inc({ result }, 0);
    }
    for (const result of ['success', 'failure'] as const) options.metrics.webhookCertReloads.inc({ result }, 0);
    options.metrics.exposeWebhookAnnotationWarnings();
  }

  get port(): number {
    return this.#port;
  }

  /** Loads the certificate (a bad pair fails the start: there is nothing to serve with) and listens. */
  async listen(): Promise<number> {
    // The pair's own message names the flag and the file (`--tls-cert: certificate file X: not a regular file`).
    const pair = this.#readPair();
    try {
      this.#signature = await this.#fileSignature();
    } catch (cause) {
      throw new MeshauthError(
        'MESHAUTH_ERR_FILE_UNREADABLE',
        `${this.#options.certFile}, ${this.#options.keyFile}: cannot read the webhook certificate and key`,
        { reason: 'webhook_cert_unreadable', cause },
      );
    }
    try {
      createSecureContext({ ...TLS, ...pair }); // a cert/key mismatch fails here, before anything listens
    } catch (cause) {
      throw new MeshauthError(
        'MESHAUTH_ERR_CONFIG_INVALID',
        `${this.#options.certFile}, ${this.#options.keyFile}: not a PEM certificate chain and its private key (${String(cause)})`,
        { reason: 'webhook_cert_invalid', cause },
      );
    }
    const server = createServer(
      {
        ...TLS,
        ...pair,
        handshakeTimeout: this.#options.handshakeTimeoutMs ?? WEBHOOK_HANDSHAKE_TIMEOUT_MS,
        requestTimeout: REQUEST_TIMEOUT_MS,
        headersTimeout: 5_000,
        connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS,
      },
      (req, res) => {
        if (adminRequestRefused(req)) return;
        this.#unanswered.add(res);
        res.once('close', () => this.#unanswered.delete(res));
        if (this.#closing) res.setHeader('connection', 'close');
        this.#handle(req, res).catch((error: unknown) => {
          this.#options.logger.error({ error: String(error) }, 'webhook request failed');
          if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
          else res.destroy();
        });
      },
    );
    this.#refusals.install(server);
    // https.Server is node:http's Server over TLS: the same 'request', setTimeout and 'timeout', and the same
    // timeout sweeper, run while the port holds connections.
    guardAdminRequests(server as unknown as HttpServer, this.#options.metrics, this.#connectionLog);
    sweepTimeoutsWhileConnected(server as unknown as HttpServer);
    guardWebhookConnections(server, {
      maxConnections: this.#options.maxConnections ?? WEBHOOK_MAX_CONNECTIONS,
      metrics: this.#options.metrics,
      connectionLog: this.#connectionLog,
      handshakeLog: this.#handshakeLog,
    });
    this.#server = server;
    this.#port = await listenOn(server, this.#options, '--listen');
    this.#timer = setInterval(() => {
      void this.checkCertificate();
    }, this.#options.reloadIntervalMs ?? DEFAULT_RELOAD_INTERVAL_MS);
    this.#timer.unref();
    return this.#port;
  }

  /** Re-reads the certificate files if they changed since the last look (also runs on its own timer). */
  checkCertificate(): Promise<void> {
    return this.#check.run();
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#overloadLog.close();
    this.#connectionLog.close();
    this.#tooLargeLog.close();
    this.#contentTypeLog.close();
    this.#notReviewLog.close();
    this.#handshakeLog.close();
    const server = this.#server;
    if (server === undefined) return;
    // Stops accepting and ends idle keep-alive connections; a review still arriving is answered (the API server
    // would otherwise count a failed call: with failurePolicy Ignore, a pod admitted without its sidecar) and its
    // connection ends with that answer. Past the request timeout nothing more is waited for.
    this.#closing = true;
    for (const res of this.#unanswered) if (!res.headersSent) res.setHeader('connection', 'close');
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => server.closeAllConnections(), REQUEST_TIMEOUT_MS);
      server.close(() => {
        clearTimeout(force);
        resolve();
      });
      server.closeIdleConnections();
    });
  }

  async #reloadIfChanged(): Promise<void> {
    const { logger, metrics } = this.#options;
    let signature: string;
    try {
      signature = await this.#fileSignature();
    } catch (error) {
      logger.warn({ error: String(error) }, 'webhook certificate files unreadable; keeping the current certificate');
      return;
    }
    if (signature === this.#signature) return;
    this.#signature = signature; // a broken pair is reported once, and retried when the files change again
    try {
      const pair = this.#readPair();
      createSecureContext({ ...TLS, ...pair });
      this.#server?.setSecureContext({ ...TLS, ...pair });
      metrics.webhookCertReloads.inc({ result: 'success' });
      logger.info({ cert: this.#options.certFile }, 'webhook certificate reloaded');
    } catch (error) {
      metrics.webhookCertReloads.inc({ result: 'failure' });
      logger.warn({ error: String(error) }, 'webhook certificate did not load; keeping the current certificate');
    }
  }

  /**
   * Bounded and regular files only: a FIFO at a path blocked the start, or a reload's promise for ever (and with it
   * every later check: they share one flight). Synchronous, as readSettingFile is: the regular-file check comes
   * before any read, so the event loop waits at most for a few KiB from a Secret volume.
   */
  #readPair(): KeyPair {
    const { certFile, keyFile } = this.#options;
    const read = (file: string, setting: string, what: string) =>
      readSettingFile(file, { setting, what, reason: 'webhook_cert_unreadable' });
    return { cert: read(certFile, '--tls-cert', 'certificate file'), key: read(keyFile, '--tls-key', 'key file') };
  }

  /** stat follows the Secret volume's symlinks: a swapped `..data` shows up as another inode or time. */
  async #fileSignature(): Promise<string> {
    const stats = await Promise.all([stat(this.#options.certFile), stat(this.#options.keyFile)]);
    return stats.map((s) => `${s.ino}:${s.size}:${s.mtimeMs}`).join('|');
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path === '/mutate') {
      if (req.method !== 'POST') {
        sendJson(res, 405, { error: 'method not allowed' }, { allow: 'POST' });
        return this.#refusals.refused(req, 'MESHAUTH_ERR_ADMIN_METHOD_NOT_ALLOWED');
      }
      return this.#mutate(req, res);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendJson(res, 405, { error: 'method not allowed' }, { allow: 'GET, HEAD' });
      return this.#refusals.refused(req, 'MESHAUTH_ERR_ADMIN_METHOD_NOT_ALLOWED');
    }
    if (path === '/healthz') return sendAdminAnswer(res, 200, 'text/plain', 'ok\n');
    if (path === '/metrics') {
      const { metrics } = this.#options;
      return sendAdminAnswer(res, 200, metrics.contentType, await metrics.pacedExposition());
    }
    sendJson(res, 404, { error: 'not found' });
    this.#refusals.refused(req, 'MESHAUTH_ERR_ADMIN_NOT_FOUND');
  }

  async #mutate(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { logger, metrics, config } = this.#options;
    const type = req.headers['content-type'] ?? '';
    if (!/^application\/json\b/i.test(type)) {
      // The API server always sends JSON: not one of its calls, so no pod went without its sidecar.
      metrics.webhookReviews.inc({ result: 'invalid' });
      this.#contentTypeLog.warn(
        { reason: 'content_type', remote: clientAddress(req.socket.remoteAddress) },
        'admission review refused: content type is not application/json',
      );
      return sendJson(res, 415, { error: 'content type must be application/json' });
    }
    // A declared length over the cap is refused unread. Otherwise bytes are reserved as they arrive, whether the
    // length is declared or the body chunked: a declared length reserved whole let a head without a body hold 4 MiB,
    // and three such heads held the budget while every review of the API server got 503.
    const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
    if (declared !== undefined && declared > MAX_REVIEW_BYTES) return this.#tooLarge(req, res);
    // The budget's share per client: an IPv6 one by its /64, as every per-source share is counted.
    const source = clientSourceKey(req.socket.remoteAddress);
    let held = 0;
    let over: BudgetRefusal | undefined;
    try {
      const read = await readLimited(req, MAX_REVIEW_BYTES, (n) => {
        over = this.#budget.reserve(source, n);
        if (over !== undefined) return false;
        held += n;
        return true;
      });
      if (read.kind === 'closed') return; // the client went away: nobody to answer
      if (read.kind === 'too_large') return this.#tooLarge(req, res);
      if (read.kind === 'over_budget') return this.#overloaded(res, source, held + read.bytes, over ?? 'budget');
      let review: unknown;
      try {
        review = JSON.parse(read.body.toString('utf8'));
      } catch {
        review = undefined;
      }
      const outcome = reviewAdmission(review, config);
      metrics.webhookReviews.inc({ result: outcome.result });
      // Counted per review, not per key: the keys are the pod creator's input, no label may carry them.
      if (outcome.unknownAnnotations.length > 0) metrics.webhookAnnotationWarnings.inc();
      const fields = { result: outcome.result, reason: outcome.reason, object: outcome.object };
      // The API server never sends a body that is no AdmissionReview: whoever does may repeat it at will.
      if (outcome.reason === 'not_a_review')
        this.#notReviewLog.warn(
          { ...fields, remote: clientAddress(req.socket.remoteAddress) },
          'admission review not handled',
        );
      else if (outcome.result === 'error')
        logger.warn({ ...fields, warnings: outcome.warnings }, 'admission review not handled');
      // The pod runs without a setting its creator meant to give it (a typo): the one line of this review says so
      // at warn, with a code to search for, since for a controller's pods nobody sees the kubectl warning.
      else if (outcome.unknownAnnotations.length > 0)
        logger.warn(
          {
            ...fields,
            code: 'MESHAUTH_ERR_MANIFEST_ANNOTATION_UNKNOWN',
            annotations: outcome.unknownAnnotations,
            warnings: outcome.warnings,
          },
          'admission review: unknown config.meshauth.dev annotations ignored',
        );
      else
        logger.info(
          outcome.warnings.length > 0 ? { ...fields, warnings: outcome.warnings } : fields,
          'admission review',
        );
      sendJson(res, outcome.httpStatus, outcome.body);
    } finally {
      this.#budget.release(source, held);
    }
  }

  #tooLarge(req: IncomingMessage, res: ServerResponse): void {
    this.#options.metrics.webhookReviews.inc({ result: 'error' });
    this.#tooLargeLog.warn(
      { reason: 'too_large', remote: clientAddress(req.socket.remoteAddress) },
      'admission review refused: body too large',
    );
    sendJson(res, 413, { error: 'body too large' }, { connection: 'close' });
  }

  /**
   * The review's body would take the bytes in flight past the budget, or its client's past its share: refused before
   * the rest is buffered (the connection closes, so the rest of the body is never read). The API server treats the
   * 503 as a failed call (failurePolicy).
   */
  #overloaded(res: ServerResponse, source: string, bytes: number, over: BudgetRefusal): void {
    const past = over === 'budget' ? 'the budget' : "one client address's share of the budget";
    const error = new MeshauthError('MESHAUTH_ERR_WEBHOOK_OVERLOADED', `review bodies in flight past ${past}`, {
      reason: 'overloaded',
    });
    this.#options.metrics.webhookReviews.inc({ result: 'error' });
    this.#overloadLog.warn(
      {
        code: error.code,
        status: error.status,
        reason: error.reason,
        limit: over,
        bytes,
        inFlight: this.#budget.used,
        budget: this.#budget.limit,
        remoteInFlight: this.#budget.usedBy(source),
        remoteShare: this.#budget.share,
        remote: clientAddress(res.req.socket.remoteAddress),
      },
      `admission review refused: ${error.message}`,
    );
    sendJson(res, error.status, error.toJSON(), {
      'retry-after': String(OVERLOADED_RETRY_AFTER_S),
      connection: 'close',
    });
  }
}

/** Which bound a refused reservation would have passed. */
type BudgetRefusal = 'budget' | 'source_share';

/**
 * A count of bytes held, in all and per source, refusing a reservation that would take the total past `limit` or
 * one source's part past `share`.
 */
class ByteBudget {
  readonly limit: number;
  readonly share: number;
  #used = 0;
  /** Only sources holding bytes have an entry: every pod has an address of its own. */
  readonly #bySource = new Map<string, number>();

  constructor(limit: number, shareOfLimit: number) {
    this.limit = limit;
    this.share = Math.floor(limit * shareOfLimit);
  }

  get used(): number {
    return this.#used;
  }

  usedBy(source: string): number {
    return this.#bySource.get(source) ?? 0;
  }

  /** Reserves `bytes` for `source`, or says which bound they would pass (and reserves nothing). */
  reserve(source: string, bytes: number): BudgetRefusal | undefined {
    if (this.#used + bytes > this.limit) return 'budget';
    if (this.usedBy(source) + bytes > this.share) return 'source_share';
    this.#used += bytes;
    addTo(this.#bySource, source, bytes);
    return undefined;
  }

  release(source: string, bytes: number): void {
    this.#used -= bytes;
    addTo(this.#bySource, source, -bytes);
  }
}

type ReadResult =
  | { readonly kind: 'body'; readonly body: Buffer }
  | { readonly kind: 'too_large' }
  | { readonly kind: 'over_budget'; readonly bytes: number }
  | { readonly kind: 'closed' };

/**
 * The body; too_large once it passes `limit`, over_budget once `admit` refuses a chunk (the rest is not kept), closed
 * when the request ends before its body did (an aborted upload must still settle, or its bytes stay reserved).
 */
function readLimited(req: IncomingMessage, limit: number, admit: (bytes: number) => boolean): Promise<ReadResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (result: ReadResult) => {
      chunks.length = 0;
      req.removeAllListeners('data');
      req.resume();
      resolve(result);
    };
    req.on('data', (chunk: Buffer) => {
      if (size + chunk.length > limit) return stop({ kind: 'too_large' });
      if (!admit(chunk.length)) return stop({ kind: 'over_budget', bytes: chunk.length });
      size += chunk.length;
      chunks.push(chunk);
    });
    req.once('end', () => resolve({ kind: 'body', body: Buffer.concat(chunks) }));
    req.once('error', () => resolve({ kind: 'closed' }));
    req.once('close', () => resolve({ kind: 'closed' }));
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  sendAdminAnswer(res, status, 'application/json', JSON.stringify(body), extra);
}
