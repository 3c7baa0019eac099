// One established TCP tunnel: bytes piped both ways between the app's plain socket and the mTLS socket of the
// peer sidecar, with backpressure (pipe pauses a side whose destination is full), half-close (a FIN one way ends
// only that way: allowHalfOpen on both sockets, end() on 'end'), resets (an error or RST on one side is an RST on
// the other), an idle timeout, and a forced end at the drain deadline. No per-chunk work beyond two counters.
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { TLSSocket } from 'node:tls';
import { resetSocket } from './reset-socket.js';

/** How a tunnel ended: both sides closed, a reset or error on one side, the idle timeout, or a drain deadline. */
export type TunnelEnd = 'closed' | 'reset' | 'idle' | 'shutdown';

export interface TunnelCounters {
  /** Payload bytes read from the app, toward the peer. */
  fromApp(bytes: number): void;
  /** Payload bytes from the peer, toward the app. */
  toApp(bytes: number): void;
}

export interface TunnelOptions {
  readonly app: Socket;
  readonly mesh: TLSSocket;
  /** The TCP socket under `mesh` when the caller created it (outbound); found from `mesh` otherwise. */
  readonly meshTcp?: Socket | undefined;
  readonly idleTimeoutMs: number;
  readonly counters: TunnelCounters;
  /** Called once, when both sockets have closed. */
  readonly onClose: (end: TunnelEnd, seconds: number) => void;
}

export class TcpTunnel {
  readonly #options: TunnelOptions;
  readonly #startedAt = performance.now();
  #end: TunnelEnd = 'closed';
  #open = 2;
  /** A reset is on its way to the other side: it must not be ended cleanly meanwhile. */
  #resetting = false;

  constructor(options: TunnelOptions) {
    this.#options = options;
    const { app, mesh, counters } = options;
    app.allowHalfOpen = true;
    mesh.allowHalfOpen = true;
    app.setNoDelay(true);
    mesh.setNoDelay(true);
    app.on('error', (error: Error) => this.#failed(app, error));
    mesh.on('error', (error: Error) => this.#failed(mesh, error));
    app.once('close', () => this.#closed(app));
    mesh.once('close', () => this.#closed(mesh));
    // Reads and writes on the app socket both count as activity, so one timer covers both directions.
    app.setTimeout(options.idleTimeoutMs, () => this.#stop('idle'));
    app.on('data', (chunk: Buffer) => counters.fromApp(chunk.length));
    // OpenSSL hands over one TLS record (at most 16 KiB) per 'data' event, several in a row per TCP read: corking
    // the app socket until the next tick sends them in one writev instead of one syscall per record.
    const uncork = () => app.uncork();
    mesh.on('data', (chunk: Buffer) => {
      counters.toApp(chunk.length);
      if (app.writableCorked === 0) {
        app.cork();
        process.nextTick(uncork);
      }
    });
    // pipe() ends the destination when the source ends: that is the FIN propagation (allowHalfOpen keeps the
    // other direction open until its own FIN).
    app.pipe(mesh);
    mesh.pipe(app);
  }

  /** Ends the tunnel now (drain deadline): both sockets are destroyed. */
  shutdown(): void {
    this.#stop('shutdown');
  }

  #stop(end: TunnelEnd): void {
    if (this.#end === 'closed') this.#end = end;
    this.#options.app.destroy();
    this.#options.mesh.destroy();
  }

  #failed(side: Socket, _error: Error): void {
    if (this.#end === 'closed') this.#end = 'reset';
    this.#resetting = true;
    const { app, mesh, meshTcp } = this.#options;
    if (side === app) resetSocket(mesh, meshTcp);
    else resetSocket(app);
    side.destroy();
  }

  #closed(side: Socket): void {
    const other = side === this.#options.app ? this.#options.mesh : this.#options.app;
    // Closed cleanly (FIN both ways) the other side finishes on its own; closed early, nothing the other side
    // still reads can be delivered: end it once what it has to write is flushed.
    if (!other.destroyed && !this.#resetting) {
      if (other.writableFinished) other.destroy();
      else {
        other.once('finish', () => other.destroy());
        other.end();
      }
    }
    if (--this.#open === 0) this.#options.onClose(this.#end, (performance.now() - this.#startedAt) / 1000);
  }
}
