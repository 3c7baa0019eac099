// Load shedding at the CA's front door (`ca serve --max-queue`): every signing request (POST /v1/svid and
// POST /v1/token) passes an AdmissionQueue; past its bound the CA answers 429 MESHAUTH_ERR_CA_OVERLOADED with
// Retry-After at once, instead of letting a cluster-wide restart pile up into timeouts. The whole request counts
// (TLS is done by then, but CSR and token checks and the signature are not), and read-only endpoints (bundle, JWKS,
// health, metrics) are never shed: a struggling CA must still say how it is.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MeshauthError } from '../errors/index.js';
import type { Metrics, RateLimitedLog } from '../telemetry/index.js';
import { AdmissionQueue } from './admission-queue.js';

/** Default bound of waiting requests per CA process: about a second of signing on one core. */
export const DEFAULT_MAX_QUEUE = 1000;
/** Requests processed at the same time per signing worker (keeps each worker fed while the main thread parses). */
const CONCURRENCY_PER_WORKER = 8;

const SHED_PATHS = new Set(['/v1/svid', '/v1/token']);

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
  return (req, res) => {
    if (req.method !== 'POST' || !SHED_PATHS.has(pathOf(req))) {
      handler(req, res);
      return;
    }
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
      const body = new MeshauthError('MESHAUTH_ERR_CA_OVERLOADED', 'signing queue full').toJSON();
      // The body is not read: close the connection so a large upload does not keep it busy.
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
    const finish = () => {
      if (done) return;
      done = true;
      if (res.statusCode === 200) queue.recordCompletion(Date.now());
      admission.release();
      metrics.caQueueDepth.set(queue.depth);
    };
    res.once('finish', finish);
    res.once('close', finish);
    void admission.waited.then(() => {
      // A client that gave up while waiting costs no signature.
      if (done || req.destroyed) {
        finish();
        return;
      }
      handler(req, res);
    });
  };
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}
