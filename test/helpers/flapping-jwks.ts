// A JWKS endpoint on 127.0.0.1 (plain http, or https under a private CA) whose answer a test switches: the
// published keys, or a fault (garbage, 500, a stall, an empty key set, an oversized document), or down (port
// closed). Counts every request it sees, so tests can assert how often a key cache fetched. Used by the JWKS
// fault and key-rotation tests; every start returns its own close (`down()`).
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { jwksText, type SigningKey } from './end-user-keys.js';

export type JwksServerMode = 'ok' | 'garbage' | 'status_500' | 'stall' | 'empty' | 'huge';

/**
 * The issuer's JWKS endpoint (https with `tls`, else plain http), whose behaviour the test switches; `down()`/`up()`
 * close and reopen the port.
 */
export class FlappingJwks {
  mode: JwksServerMode = 'ok';
  keys: SigningKey[] = [];
  requests = 0;
  readonly #server: Server | ReturnType<typeof createHttpServer>;
  readonly #scheme: string;
  #port = 0;

  constructor(tls?: { key: string; cert: string }) {
    this.#scheme = tls === undefined ? 'http' : 'https';
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.requests++;
      switch (this.mode) {
        case 'ok':
          res.writeHead(200, { 'content-type': 'application/json' }).end(jwksText(...this.keys));
          return;
        case 'garbage':
          res.writeHead(200, { 'content-type': 'application/json' }).end('<html>502 Bad Gateway</html>');
          return;
        case 'status_500':
          res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error');
          return;
        case 'stall':
          req.on('close', () => res.destroy());
          return; // never answers: the cache's fetch timeout ends it
        case 'empty':
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys": []}');
          return;
        case 'huge':
          res.writeHead(200, { 'content-type': 'application/json' }).end(`{"keys": [], "x": "${'x'.repeat(300_000)}"}`);
          return;
      }
    };
    this.#server = tls === undefined ? createHttpServer(handler) : createServer(tls, handler);
  }

  get url(): string {
    return `${this.#scheme}://127.0.0.1:${this.#port}`;
  }

  async up(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(this.#port, '127.0.0.1', resolve));
    this.#port = (this.#server.address() as AddressInfo).port;
  }

  /** Listening again if it was down, answering as `mode` says. */
  async serve(mode: JwksServerMode): Promise<void> {
    if (!this.#server.listening) await this.up();
    this.mode = mode;
  }

  async down(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
