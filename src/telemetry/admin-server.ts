// The admin listener: /livez (the process runs; /healthz is its alias), /startupz (holds a valid SVID:
// what a native sidecar's startup probe asks, since the app starts only after it passes), /readyz (valid SVID, app
// reachable, not draining), /app-health/<container>/<livez|readyz|startupz> (an app container's own probe,
// forwarded to the configured port on 127.0.0.1 and nowhere else; outside policy, like the kubelet's own probe),
// /metrics (Prometheus exposition). Read-only by design: no mutating endpoints.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { listenOn } from '../platform/index.js';
import { type AppProbeForwardTarget, forwardAppProbe } from '../sidecar/app-probe.js';
import { ADMIN_SERVER_TIMEOUTS, adminRequestRefused, limitAdminConnections } from './admin-connections.js';
import { AdminRefusals } from './admin-refusals.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

/**
 * What /readyz is told: true (or no unmet condition) when ready; otherwise false, or the unmet conditions as short
 * plain phrases (`no SVID yet`) that the 503 body lists, so whoever asks /readyz by hand sees why.
 */
export type Readiness = boolean | readonly string[];

export type AppProbeKind = 'livez' | 'readyz' | 'startupz';
export type AppProbeTargets = ReadonlyMap<string, Readonly<Partial<Record<AppProbeKind, AppProbeForwardTarget>>>>;

const APP_HEALTH = /^\/app-health\/([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)\/(livez|readyz|startupz)$/;

export interface AdminServerOptions {
  readonly host: string;
  readonly port: number;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Evaluated on every /readyz request. */
  readonly readiness: () => Readiness | Promise<Readiness>;
  /**
   * Evaluated on every /startupz request: true (or no unmet condition) once the sidecar holds a usable SVID; the
   * unmet conditions, when given, are listed in the 503 body as /readyz lists its own. Default: always true.
   */
  readonly startup?: () => Readiness | Promise<Readiness>;
  /** The app containers' probes `/app-health/<container>/<kind>` forwards (admin.appProbes). Default: none. */
  readonly appProbes?: AppProbeTargets;
  /** Bound on one forwarded app probe (the kubelet's own timeout also ends it). Default 5 s. */
  readonly appProbeTimeoutMs?: number;
}

export class AdminServer {
  readonly #options: AdminServerOptions;
  readonly #server: Server;
  readonly #refusals: AdminRefusals;
  /** The app probe forwards running, per probe (#forwardShared). */
  readonly #forwards = new Map<AppProbeForwardTarget, SharedForward>();
  #port = 0;

  constructor(options: AdminServerOptions) {
    this.#options = options;
    this.#server = createServer(ADMIN_SERVER_TIMEOUTS, (req, res) => {
      if (adminRequestRefused(req)) return;
      this.#handle(req, res).catch((error: unknown) => {
        options.logger.error({ error: String(error) }, 'admin request failed');
        if (!res.headersSent) sendAdminAnswer(res, 500, 'text/plain', 'internal error\n');
        else res.destroy();
      });
    });
    this.#refusals = new AdminRefusals(options.metrics, options.logger);
    this.#refusals.install(this.#server);
    limitAdminConnections(this.#server, options.metrics, options.logger);
  }

  get port(): number {
    return this.#port;
  }

  async listen(): Promise<number> {
    this.#port = await listenOn(this.#server, this.#options, 'admin.listen');
    return this.#port;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendAdminAnswer(res, 405, 'text/plain', 'method not allowed\n', { allow: 'GET, HEAD' });
      this.#refusals.refused(req, 'MESHAUTH_ERR_ADMIN_METHOD_NOT_ALLOWED');
      return;
    }
    const path = (req.url ?? '/').split('?', 1)[0];
    switch (path) {
      case '/livez':
      case '/healthz':
        sendAdminAnswer(res, 200, 'text/plain', 'ok\n');
        return;
      case '/startupz':
        sendProbeAnswer(res, (await this.#options.startup?.()) ?? true, 'started', 'not started');
        return;
      case '/readyz':
        // Probes only look at the status; the body is for the person curling it.
        sendProbeAnswer(res, await this.#options.readiness(), 'ready', 'not ready');
        return;
      case '/metrics': {
        const text = await this.#options.metrics.pacedExposition();
        sendAdminAnswer(res, 200, this.#options.metrics.contentType, text);
        return;
      }
      default:
        if (path?.startsWith('/app-health/')) {
          await this.#appHealth(path, req, res);
          return;
        }
        sendAdminAnswer(res, 404, 'text/plain', 'not found\n');
        this.#refusals.refused(req, 'MESHAUTH_ERR_ADMIN_NOT_FOUND');
    }
  }

  async #appHealth(path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const match = APP_HEALTH.exec(path);
    const container = match?.[1];
    const kind = match?.[3] as AppProbeKind | undefined;
    const target =
      container === undefined || kind === undefined ? undefined : this.#options.appProbes?.get(container)?.[kind];
    if (target === undefined) {
      sendAdminAnswer(res, 404, 'text/plain', 'no such app probe\n');
      this.#refusals.refused(req, 'MESHAUTH_ERR_ADMIN_NOT_FOUND');
      return;
    }
    const status = await this.#forwardShared(target, req, res);
    if (res.destroyed) return;
    if (status === 204 || status === 304) {
      res.writeHead(status, { 'cache-control': 'no-store' }).end(); // statuses that carry no body
      return;
    }
    sendAdminAnswer(res, status, 'text/plain', `app ${container} ${kind}: ${status}\n`);
  }

  /**
   * The app's answer to `target`, from a forward of its own or from the one already running for that probe. The
   * kubelet never asks a probe again before its last ask ended; more at once is someone else, and each used to hold
   * a connection to the app (a flood of them took the sidecar's file descriptors). Sharing, rather than refusing
   * past a cap, keeps such a client from failing the kubelet's own probe.
   */
  #forwardShared(target: AppProbeForwardTarget, req: IncomingMessage, res: ServerResponse): Promise<number> {
    const forward = this.#forwards.get(target) ?? this.#startForward(target, req.headers['user-agent']);
    forward.waiting += 1;
    let settled = false;
    res.once('close', () => {
      if (settled) return;
      forward.waiting -= 1;
      if (forward.waiting > 0) return;
      forward.abandoned.abort();
      this.#forgetForward(target, forward); // a request that comes now asks the app again
    });
    return forward.status.finally(() => {
      settled = true;
    });
  }

  #startForward(target: AppProbeForwardTarget, userAgent: string | undefined): SharedForward {
    const abandoned = new AbortController();
    const forward: SharedForward = {
      abandoned,
      waiting: 0,
      // Resolves in every case (the app's status, or 503): never rejects.
      status: forwardAppProbe(target, {
        signal: abandoned.signal,
        ...(this.#options.appProbeTimeoutMs === undefined ? {} : { timeoutMs: this.#options.appProbeTimeoutMs }),
        ...(userAgent === undefined ? {} : { userAgent }),
      }),
    };
    void forward.status.then(() => this.#forgetForward(target, forward));
    this.#forwards.set(target, forward);
    return forward;
  }

  #forgetForward(target: AppProbeForwardTarget, forward: SharedForward): void {
    if (this.#forwards.get(target) === forward) this.#forwards.delete(target);
  }
}

/** One forward of an app probe, shared by every request for that probe that comes while it runs. */
interface SharedForward {
  readonly status: Promise<number>;
  readonly abandoned: AbortController;
  /** Requests still waiting for it: when the last one goes away (the kubelet's timeout), the app is no longer asked. */
  waiting: number;
}

/** A small uncacheable answer of the admin-style listeners (sidecar admin, CA admin, webhook); HEAD gets no body. */
export function sendAdminAnswer(
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

/** 200 `yes`, or 503 `no`, followed by the unmet conditions when the probe gave them. */
function sendProbeAnswer(res: ServerResponse, answer: Readiness, yes: string, no: string): void {
  const unmet = typeof answer === 'boolean' ? undefined : answer;
  const ok = unmet === undefined ? answer === true : unmet.length === 0;
  const body = ok ? `${yes}\n` : unmet === undefined ? `${no}\n` : `${no}: ${unmet.join('; ')}\n`;
  sendAdminAnswer(res, ok ? 200 : 503, 'text/plain', body);
}
