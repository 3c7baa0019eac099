// The refusals of the admin-style listeners (the sidecar's and the gateway's admin port, `ca serve --admin-listen`,
// the injection webhook): an unknown path (404), a method other than the ones served (405), and what node:http refuses
// before their handlers see a request (a head it cannot parse, a head past its size limit, a head or body still
// arriving at its timeouts, an `Expect` other than 100-continue, CONNECT). Each is counted in
// meshauth_requests_rejected_total{direction="admin", code} and logged in one `admin_request_rejected` line. Anyone
// who reaches the port (the sidecar's listens on 0.0.0.0) can cause any of them in a loop, so the lines are
// rate-limited: one per window, the rest counted as suppressed and summed up. The answers stay what they were
// (status, and a body where node:http gave one).
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { type ErrorCode, MeshauthError } from '../errors/index.js';
import {
  answerOnSocket,
  clientAddress,
  expectationUnsupported,
  firstClientErrorOnly,
  nodeRefusal,
  triageClientError,
} from '../platform/index.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import { RateLimitedLog } from './rate-limited-log.js';

const EVENT = 'admin_request_rejected';
const LOG_INTERVAL_MS = 10_000;

export type AdminRefusalCode = Extract<
  ErrorCode,
  'MESHAUTH_ERR_ADMIN_NOT_FOUND' | 'MESHAUTH_ERR_ADMIN_METHOD_NOT_ALLOWED'
>;

const REFUSED: Readonly<Record<AdminRefusalCode, { readonly message: string; readonly reason: string }>> = {
  MESHAUTH_ERR_ADMIN_NOT_FOUND: { message: 'unknown path', reason: 'not_found' },
  MESHAUTH_ERR_ADMIN_METHOD_NOT_ALLOWED: { message: 'method not served', reason: 'method_not_allowed' },
};

export class AdminRefusals {
  readonly #metrics: Metrics;
  readonly #log: RateLimitedLog;

  constructor(metrics: Metrics, logger: Logger) {
    this.#metrics = metrics;
    this.#log = new RateLimitedLog(logger, metrics, EVENT, LOG_INTERVAL_MS);
  }

  /** Counts and logs a request the handler refused (it has answered `req` already). */
  refused(req: IncomingMessage, code: AdminRefusalCode): void {
    const { message, reason } = REFUSED[code];
    const error = new MeshauthError(code, message, { reason });
    this.#record(error, req.socket, req.method);
  }

  /** Installs the 'clientError', 'checkExpectation' and 'connect' listeners on an admin-style server. */
  install(server: Server): void {
    server.on(
      'clientError',
      firstClientErrorOnly((error: Error & { code?: string }, socket: Duplex) => this.#onClientError(error, socket)),
    );
    server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
      const error = expectationUnsupported();
      this.#record(error, req.socket, req.method);
      res.writeHead(error.status, { 'content-type': 'text/plain', 'cache-control': 'no-store', connection: 'close' });
      res.end(`${error.publicMessage}\n`);
    });
    server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
      const error = new MeshauthError('MESHAUTH_ERR_ADMIN_METHOD_NOT_ALLOWED', 'CONNECT is not served', {
        reason: 'method_not_allowed',
      });
      this.#record(error, socket, 'CONNECT');
      answer(socket, error);
    });
  }

  #onClientError(error: Error & { code?: string }, socket: Duplex): void {
    const triage = triageClientError(error, socket);
    if (triage === 'handled') return;
    const rejection = nodeRefusal(error.code);
    this.#record(rejection, socket, triage.pending?.req.method, error.code);
    answer(socket, rejection);
  }

  #record(error: MeshauthError, socket: Duplex, method: string | undefined, parserCode?: string): void {
    this.#metrics.requestsRejected.inc({ direction: 'admin', code: error.code });
    this.#log.warn(
      {
        direction: 'admin',
        code: error.code,
        status: error.status,
        reason: error.reason,
        method,
        parserCode,
        remote: clientAddress((socket as Duplex & { remoteAddress?: string }).remoteAddress),
      },
      `admin request rejected: ${error.message}`,
    );
  }
}

function answer(socket: Duplex, error: MeshauthError): void {
  answerOnSocket(socket, error.status, 'text/plain', `${error.publicMessage}\n`);
}
