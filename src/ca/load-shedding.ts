// Load shedding at the CA's front door (`ca serve --max-queue`): every signing request (POST /v1/svid and
// POST /v1/token) passes an AdmissionQueue; past its bound the CA answers 429 MESHAUTH_ERR_CA_OVERLOADED with
// Retry-After at once, instead of letting a cluster-wide restart pile up into timeouts. A request takes its place
// once its body has arrived (read once, bounded, handed to the handler): a client trickling a body must not hold
// one of the few places in progress for the whole request timeout, which took a handful of connections without any
// credential to stop all issuance. From there the whole request counts (CSR and token checks and the signature),
// and read-only endpoints (bundle, JWKS, health, metrics) are never shed: a struggling CA must still say how it is.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MeshauthError } from '../errors/index.js';
import type { Metrics, RateLimitedLog } from '../telemetry/index.js';
import { AdmissionQueue } from './admission-queue.js';
import { MAX_BODY_BYTES, refusedTransferCoding } from './api.js';
import { readBodyLimited } from './read-body.js';
import { MAX_TOKEN_REQUEST_BYTES } from './token-endpoint.js';
import { oauthErrorBody } from './token-request.js';

/** Default bound of waiting requests per CA process: about a second of signing on one core. */
export const DEFAULT_MAX_QUEUE = 1000;
/** Requests processed at the same time per signing worker (keeps each worker fed while the main thread parses). */
const CONCURRENCY_PER_WORKER = 8;

/** The signing endpoints, with the body limit of each (the handler reads the same body through readBodyLimited). */
const SHED_PATHS: ReadonlyMap<string, number> = new Map([
  ['/v1/svid', MAX_BODY_BYTES],
  ['/v1/token', MAX_TOKEN_REQUEST_BYTES],
]);

export interface LoadSheddingOptions {
  /** Requests allowed to wait beyond those being processed (`--max-queue`). */
  readonly maxQueue: number;
  /** Signing workers (`--workers`, 0 = in-thread); sets how many requests are processed at once. */
  readonly workers: number;
  /** Open connections of the server (see AdmissionOptions.backlog). */
  readonly openConnections?: () => number;
  /** The `ca_overloaded` log (shared with the door): a refusal is logged at most once per its interval. */
  readonly overloadLog: RateLimitedLog;
  readonly metrics: Metrics;
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

export function withLoadShedding(handler: RequestHandler, options: LoadSheddingOptions): RequestHandler {
  const queue = new AdmissionQueue({
    maxConcurrent: Math.max(1, options.workers) * CONCURRENCY_PER_WORKER,
    maxQueue: options.maxQueue,
    ...(options.openConnections === undefined ? {} : { backlog: options.openConnections }),
  });
  const { overloadLog, metrics } = options;
  const admitted = (req: IncomingMessage, res: ServerResponse): void => {
    const admission = queue.admit();
    if (!admission.admitted) {
      metrics.caRequestsRejected.inc({ reason: 'overloaded' });
      overloadLog.warn(
        {
          code: 'MESHAUTH_ERR_CA_OVERLOADED',
          queueDepth: queue.depth,
          retryAfterSeconds: admission.retryAfterSeconds,
          signingsPerSecond: Math.round(queue.signingsPerSecond),
        },
        'CA overloaded: refusing signing requests with 429 and Retry-After',
      );
      const overloaded = new MeshauthError('MESHAUTH_ERR_CA_OVERLOADED', 'signing queue full', {
        detail: { oauthError: 'temporarily_unavailable' },
      });
      // The token endpoint answers every error in the OAuth form its clients parse (as its per-identity limit does).
      const body = pathOf(req) === '/v1/token' ? oauthErrorBody(overloaded) : overloaded.toJSON();
      // Nothing more is read from this connection: close it so a client that keeps sending does not keep it busy.
      res.writeHead(429, {
        'content-type': 'application/json',
        'cache-control': 'no-store',
        'retry-after': String(admission.retryAfterSeconds),
        connection: 'close',
      });
      res.end(`${JSON.stringify(body)}\n`);
      return;
    }
    metrics.caQueueDepth.set(queue.depth);
    let done = false;
    const finish = (answered: boolean) => {
      if (done) return;
      done = true;
      // Only a signature sent teaches the queue its signing rate; a request cut short taught it a rate never reached.
      if (answered && res.statusCode === 200) queue.recordCompletion(Date.now());
      admission.release();
      metrics.caQueueDepth.set(queue.depth);
    };
    res.once('finish', () => finish(true));
    res.once('close', () => finish(false));
    void admission.waited.then(() => {
      // A client that gave up while waiting costs no signature.
      if (done || req.socket.destroyed) {
        finish(false);
        return;
      }
      handler(req, res);
    });
  };
  return (req, res) => {
    const limit = req.method === 'POST' ? SHED_PATHS.get(pathOf(req)) : undefined;
    // A request the handler refuses from its head alone takes no place and no body read.
    if (limit === undefined || refusedTransferCoding(req)) {
      handler(req, res);
      return;
    }
    // A body that cannot be read (too large, cut short) is the handler's to refuse, with its own code: no place.
    readBodyLimited(req, limit).then(
      () => admitted(req, res),
      () => handler(req, res),
    );
  };
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}
