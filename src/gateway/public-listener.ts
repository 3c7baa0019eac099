// The gateway's public listener: TLS with a normal server certificate (not the SVID), HTTP/2 and HTTP/1.1 chosen by
// ALPN (node:http2 with allowHTTP1). The certificate and key files are watched and re-read when they change (a
// cert-manager renewal or a Secret update): a pair that does not load keeps the old one in service and is logged.
// Header blocks are bounded (431 on HTTP/1.1; HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE), connections time out when idle.
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import {
  createSecureServer,
  type Http2SecureServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
} from 'node:http2';
import type { Socket } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { HostPort } from '../config/index.js';
import { MeshauthError } from '../errors/index.js';
import { listenOn } from '../platform/index.js';
import type { Logger } from '../telemetry/index.js';

export interface PublicListenerOptions {
  readonly listen: HostPort;
  readonly certFile: string;
  readonly keyFile: string;
  readonly maxHeaderBytes: number;
  readonly logger: Logger;
  /** How often the files are polled for changes (ms). */
  readonly watchIntervalMs?: number;
  readonly onRequest: (req: Http2ServerRequest, res: Http2ServerResponse) => void;
}

export class PublicListener {
  readonly #options: PublicListenerOptions;
  readonly #server: Http2SecureServer;
  readonly #sockets = new Set<Socket>();
  #material: string;
  #port = 0;
  #watching = false;

  constructor(options: PublicListenerOptions) {
    this.#options = options;
    const { cert, key } = readPair(options.certFile, options.keyFile);
    this.#material = cert + key;
    this.#server = createSecureServer(
      {
        cert,
        key,
        allowHTTP1: true,
        ALPNProtocols: ['h2', 'http/1.1'],
        minVersion: 'TLSv1.2',
        maxHeaderSize: options.maxHeaderBytes,
        settings: { maxHeaderListSize: options.maxHeaderBytes, enablePush: false, maxConcurrentStreams: 100 },
        maxSessionMemory: 10,
      } as Parameters<typeof createSecureServer>[0],
      options.onRequest,
    );
    this.#server.setTimeout(120_000);
    this.#server.on('secureConnection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    // Handshake failures (scanners, old clients) are routine on a public port: no stack, no crash.
    this.#server.on('tlsClientError', () => undefined);
  }

  get port(): number {
    return this.#port;
  }

  async listen(): Promise<number> {
    this.#port = await listenOn(this.#server, this.#options.listen);
    this.#watch();
    return this.#port;
  }

  /** Re-reads the certificate and key now; true when a new pair was installed. */
  reload(): boolean {
    const { certFile, keyFile, logger } = this.#options;
    let pair: { cert: string; key: string };
    try {
      pair = readPair(certFile, keyFile);
    } catch (error) {
      logger.warn(
        { event: 'certificate_reload', result: 'failed', err: (error as Error).message },
        'kept the old certificate',
      );
      return false;
    }
    if (pair.cert + pair.key === this.#material) return false;
    this.#server.setSecureContext({ cert: pair.cert, key: pair.key, minVersion: 'TLSv1.2' });
    this.#material = pair.cert + pair.key;
    logger.info({ event: 'certificate_reload', result: 'ok', cert: certFile }, 'server certificate reloaded');
    return true;
  }

  async close(deadline: number): Promise<void> {
    this.#unwatch();
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      const left = Math.max(0, deadline - Date.now());
      setTimeout(() => {
        for (const socket of this.#sockets) socket.destroy();
        resolve();
      }, left).unref();
    });
  }

  #watch(): void {
    const interval = this.#options.watchIntervalMs ?? 2_000;
    // Polling, not fs.watch: Kubernetes updates mounted Secrets by swapping a symlink, which inotify on the file misses.
    const onChange = () => this.reload();
    watchFile(this.#options.certFile, { interval, persistent: false }, onChange);
    watchFile(this.#options.keyFile, { interval, persistent: false }, onChange);
    this.#watching = true;
  }

  #unwatch(): void {
    if (!this.#watching) return;
    unwatchFile(this.#options.certFile);
    unwatchFile(this.#options.keyFile);
    this.#watching = false;
  }
}

/** Reads and checks a certificate/key pair (a mismatched pair throws here, not at the next handshake). */
function readPair(certFile: string, keyFile: string): { cert: string; key: string } {
  let cert: string;
  let key: string;
  try {
    cert = readFileSync(certFile, 'utf8');
    key = readFileSync(keyFile, 'utf8');
  } catch (cause) {
    throw new MeshauthError('MESHAUTH_ERR_FILE_UNREADABLE', `tls: cannot read ${certFile} / ${keyFile}`, {
      reason: 'tls_files',
      cause,
    });
  }
  try {
    createSecureContext({ cert, key });
  } catch (cause) {
    throw new MeshauthError('MESHAUTH_ERR_CONFIG_INVALID', `tls: ${certFile} and ${keyFile} are not a usable pair`, {
      reason: 'tls_pair',
      cause,
    });
  }
  return { cert, key };
}
