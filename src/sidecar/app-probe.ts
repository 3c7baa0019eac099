// Readiness probe of the local app (SPEC §7 "/readyz: ready once … the app answers"): a TCP connect with a
// short timeout. Results are cached briefly so a tight probe loop does not open a connection per request.
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
