// `ca serve --admin-listen HOST:PORT`: plain HTTP for the kubelet and Prometheus, apart from the TLS API (whose
// certificate a kubelet probe cannot verify): /livez (the process answers; /healthz is the same), /readyz (the CA
// can sign: its intermediate is within its validity), /metrics. Read-only; nothing else is served.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { listenOn } from '../platform/index.js';
import { ADMIN_SERVER_TIMEOUTS, adminRequestRefused, limitAdminConnections } from '../telemetry/admin-connections.js';
import { AdminRefusals } from '../telemetry/admin-refusals.js';
import { sendAdminAnswer } from '../telemetry/admin-server.js';
import type { Logger, Metrics } from '../telemetry/index.js';
import type { CaAuthority } from './authority.js';
import { parseListenAddress } from './listen-address.js';

export interface CaAdminListener {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export interface CaAdminOptions {
  readonly listen: string;
  readonly authority: CaAuthority;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly now: () => Date;
}

export async function startCaAdminListener(options: CaAdminOptions): Promise<CaAdminListener> {
  const address = parseListenAddress(options.listen);
  const refusals = new AdminRefusals(options.metrics, options.logger);
  const server: Server = createServer(ADMIN_SERVER_TIMEOUTS, (req, res) => {
    if (adminRequestRefused(req)) return;
    handle(options, refusals, req, res).catch((error: unknown) => {
      options.logger.error({ event: 'ca_admin_request_failed', err: error }, 'admin request failed');
      if (!res.headersSent) sendAdminAnswer(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    });
  });
  refusals.install(server);
  limitAdminConnections(server, options.metrics, options.logger);
  const port = await listenOn(server, address, '--admin-listen');
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return {
    url: `http://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function handle(
  options: CaAdminOptions,
  refusals: AdminRefusals,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendAdminAnswer(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: 'GET, HEAD' });
    refusals.refused(req, 'MESHAUTH_ERR_ADMIN_METHOD_NOT_ALLOWED');
    return;
  }
  switch ((req.url ?? '/').split('?', 1)[0]) {
    case '/livez':
    case '/healthz':
      sendAdminAnswer(res, 200, 'text/plain; charset=utf-8', 'ok\n');
      return;
    case '/readyz': {
      const intermediate = options.authority.material.issuer.certificate;
      const now = options.now().getTime();
      const ready = intermediate.notBefore.getTime() <= now && now < intermediate.notAfter.getTime();
      sendAdminAnswer(
        res,
        ready ? 200 : 503,
        'text/plain; charset=utf-8',
        ready ? 'ready\n' : 'intermediate not valid\n',
      );
      return;
    }
    case '/metrics':
      sendAdminAnswer(res, 200, options.metrics.contentType, await options.metrics.pacedExposition());
      return;
    default:
      sendAdminAnswer(res, 404, 'text/plain; charset=utf-8', 'not found\n');
      refusals.refused(req, 'MESHAUTH_ERR_ADMIN_NOT_FOUND');
  }
}
