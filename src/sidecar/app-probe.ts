// Probes of the local app. AppProbe: reachability for /readyz (ready only once the app answers), a TCP
// connect with a short timeout, cached briefly so a tight probe loop does not open a connection per request.
// forwardAppProbe: an app container's own HTTP probe, forwarded on loopback for /app-health/<container>/<kind>.
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import type { HostPort } from '../config/index.js';

const PROBE_TIMEOUT_MS = 1_000;
const CACHE_MS = 500;

export class AppProbe {
  readonly #address: HostPort;
  #last: { at: number; ok: boolean } | undefined;
  #inFlight: Promise<boolean> | undefined;

  constructor(address: HostPort) {
    this.#address = address;
  }

  reachable(): Promise<boolean> {
    const now = Date.now();
    if (this.#last !== undefined && now - this.#last.at < CACHE_MS) return Promise.resolve(this.#last.ok);
    this.#inFlight ??= this.#probe().then((ok) => {
      this.#last = { at: Date.now(), ok };
      this.#inFlight = undefined;
      return ok;
    });
    return this.#inFlight;
  }

  #probe(): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = connect({ host: this.#address.host, port: this.#address.port });
      const done = (ok: boolean) => {
        socket.destroy();
        resolve(ok);
      };
      socket.setTimeout(PROBE_TIMEOUT_MS, () => done(false));
      socket.once('connect', () => done(true));
      socket.once('error', () => done(false));
    });
  }
}

/** Where an app container's own probe is answered: a port on 127.0.0.1 and a path (from `admin.appProbes`). */
export interface AppProbeForwardTarget {
  readonly port: number;
  readonly path: string;
}

const FORWARD_TIMEOUT_MS = 5_000;
/** The app's probe body is read and thrown away; past this much the connection is dropped (status is known). */
const MAX_PROBE_BODY_BYTES = 64 * 1024;

/**
 * Asks the app's own health endpoint on loopback, as the kubelet would have (`/app-health/<container>/<kind>`).
 * Resolves to the app's status code, or 503 when the app cannot be reached or does not answer in time. The host is
 * always 127.0.0.1: a probe can reach the app in this pod and nothing else.
 */
export function forwardAppProbe(
  target: AppProbeForwardTarget,
  options: { readonly timeoutMs?: number; readonly signal?: AbortSignal; readonly userAgent?: string } = {},
): Promise<number> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (status: number) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      request.destroy();
      resolve(status);
    };
    const request = httpRequest(
      {
        host: '127.0.0.1',
        port: target.port,
        path: target.path,
        method: 'GET',
        agent: false,
        headers: {
          host: `127.0.0.1:${target.port}`,
          'user-agent': options.userAgent ?? 'meshauth-probe',
          connection: 'close',
        },
      },
      (response) => {
        const status = response.statusCode ?? 503;
        let bytes = 0;
        response.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes > MAX_PROBE_BODY_BYTES) finish(status);
        });
        response.once('end', () => finish(status));
        response.once('error', () => finish(status));
      },
    );
    const timer = setTimeout(() => finish(503), options.timeoutMs ?? FORWARD_TIMEOUT_MS);
    const onAbort = () => finish(503);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    request.once('error', () => finish(503));
    request.end();
  });
}
