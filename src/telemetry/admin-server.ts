// The admin listener (SPEC §7): /healthz (the process runs), /readyz (ready to serve: valid SVID, app reachable,
// not draining), /metrics (Prometheus exposition). Read-only by design: no mutating endpoints (security.md F12).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

export interface AdminServerOptions {
  readonly host: string;
  readonly port: number;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Evaluated on every /readyz request. */
  readonly readiness: () => boolean | Promise<boolean>;
}

export class AdminServer {
  readonly #options: AdminServerOptions;
  readonly #server: Server;
  #port = 0;

  constructor(options: AdminServerOptions) {
    this.#options = options;
    this.#server = createServer({ requestTimeout: 10_000, headersTimeout: 5_000 }, (req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        options.logger.error({ error: String(error) }, 'admin request failed');
        if (!res.headersSent) send(res, 500, 'text/plain', 'internal error\n');
        else res.destroy();
      });
    });
  }

  get port(): number {
    return this.#port;
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#options.port, this.#options.host, () => {
        this.#server.off('error', reject);
        const address = this.#server.address();
        this.#port = typeof address === 'object' && address !== null ? address.port : this.#options.port;
        resolve(this.#port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain', 'method not allowed\n', { allow: 'GET, HEAD' });
      return;
    }
    const path = (req.url ?? '/').split('?', 1)[0];
    switch (path) {
      case '/healthz':
        send(res, 200, 'text/plain', 'ok\n');
        return;
      case '/readyz': {
        const ready = await this.#options.readiness();
        send(res, ready ? 200 : 503, 'text/plain', ready ? 'ready\n' : 'not ready\n');
        return;
      }
      case '/metrics': {
        const text = await this.#options.metrics.exposition();
        send(res, 200, this.#options.metrics.contentType, text);
        return;
      }
      default:
        send(res, 404, 'text/plain', 'not found\n');
    }
  }
}

function send(
  res: ServerResponse,
  status: number,
  contentType: string,
  body: string,
  extra: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...extra,
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
