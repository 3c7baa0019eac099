// One established TCP tunnel: bytes carried both ways between the app's plain socket and the mTLS socket of the
// peer sidecar (or, for an egress tunnel, the plain socket of the outside destination), with backpressure (a side whose destination is full is paused), half-close (an end one way ends only
// that way: allowHalfOpen on both sockets), resets (an error or RST on one side is an RST on the other), an idle
// timeout, and a forced end at the drain deadline. On the mesh side of a meshauth-tcp/2 tunnel the bytes travel in
// frames and the app's FIN becomes the end frame (tcp-framing.ts): a mesh side that ends without that frame was cut
// and the app gets a reset. A meshauth-tcp/1 tunnel pipes raw bytes, a FIN passed on as a FIN.
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { resetSocket } from './reset-socket.js';
import { END_FRAME, FrameReader, frameHeader } from './tcp-framing.js';

/** How a tunnel ended: both sides closed, a reset or error on one side, the idle timeout, or a drain deadline. */
/** How a tunnel ended; `framing`: reset because the peer broke meshauth-tcp/2 framing (hostile or broken input). */
export type TunnelEnd = 'closed' | 'reset' | 'idle' | 'shutdown' | 'framing';

export interface TunnelCounters {
  /** Payload bytes read from the app, toward the peer. */
  fromApp(bytes: number): void;
  /** Payload bytes from the peer, toward the app. */
  toApp(bytes: number): void;
}

export interface TunnelOptions {
  readonly app: Socket;
  /** The far side: the mTLS socket to the peer sidecar, or the plain socket to an egress destination (raw). */
  readonly mesh: Socket;
  /** The TCP socket under `mesh` when the caller created it (outbound); found from `mesh` otherwise. */
  readonly meshTcp?: Socket | undefined;
  readonly idleTimeoutMs: number;
  /** meshauth-tcp/2 (framed mesh side) rather than meshauth-tcp/1 (raw). */
  readonly framed: boolean;
  readonly counters: TunnelCounters;
  /** Called once, when both sockets have closed; `broken`: what broke the framing, for end `framing`. */
  readonly onClose: (end: TunnelEnd, seconds: number, broken?: string) => void;
}

export class TcpTunnel {
  readonly #options: TunnelOptions;
  readonly #startedAt = performance.now();
  #end: TunnelEnd = 'closed';
  #open = 2;
  /** A reset is on its way to the other side: it must not be ended cleanly meanwhile. */
  #resetting = false;
  /** The framed tunnel's reader of the mesh side (undefined: raw). */
  #reader: FrameReader | undefined;
  /** What the peer sent that broke the framing (end `framing`). */
  #broken: string | undefined;

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
    if (options.framed) {
      this.#pipeFramed();
      return;
    }
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

  /** meshauth-tcp/2: one frame per read from the app, its FIN as the end frame; frames from the mesh unwrapped. */
  #pipeFramed(): void {
    const { app, mesh, counters } = this.#options;
    let meshFull = false;
    const resumeApp = () => {
      meshFull = false;
      app.resume();
    };
    app.on('data', (chunk: Buffer) => {
      if (chunk.length === 0) return; // an empty frame is the end frame
      counters.fromApp(chunk.length);
      mesh.cork();
      mesh.write(frameHeader(chunk.length));
      const more = mesh.write(chunk);
      mesh.uncork();
      if (!more && !meshFull) {
        meshFull = true;
        app.pause();
        mesh.once('drain', resumeApp);
      }
    });
    app.once('end', () => {
      if (mesh.destroyed || this.#resetting) return;
      mesh.write(END_FRAME);
      mesh.end();
    });
    const reader = new FrameReader();
    this.#reader = reader;
    let appFull = false;
    const resumeMesh = () => {
      appFull = false;
      mesh.resume();
    };
    const toApp = (payload: Buffer) => {
      counters.toApp(payload.length);
      if (!app.write(payload) && !appFull) {
        appFull = true;
        mesh.pause();
        app.once('drain', resumeMesh);
      }
    };
    // As in the raw tunnel: the records of one TCP read leave for the app in one writev.
    const uncork = () => app.uncork();
    mesh.on('data', (chunk: Buffer) => {
      if (app.writableCorked === 0) {
        app.cork();
        process.nextTick(uncork);
      }
      const broken = reader.push(chunk, toApp);
      // A reset: what this read already handed the corked app socket is dropped with it.
      if (broken !== undefined) {
        if (this.#end === 'closed') {
          this.#end = 'framing';
          this.#broken = broken;
        }
        this.#failed(mesh, new Error(`meshauth-tcp/2 framing: ${broken}`));
      }
    });
    mesh.once('end', () => {
      if (this.#resetting) return;
      if (reader.ended) app.end();
      else this.#stop('reset'); // a FIN without the end frame: the stream was cut, not ended
    });
  }

  /** Ends the tunnel now (drain deadline): both sides are reset. */
  shutdown(): void {
    this.#stop('shutdown');
  }

  /**
   * A cut (the drain deadline, the idle timeout, a mesh side that ended without its end): both sides get a reset,
   * never a FIN, which the apps would take as the other side's clean end of its stream. An idle pooled connection
   * cut at the deadline sees ECONNRESET rather than EOF.
   */
  #stop(end: TunnelEnd): void {
    if (this.#end === 'closed') this.#end = end;
    this.#resetting = true;
    const { app, mesh, meshTcp } = this.#options;
    resetSocket(app);
    resetSocket(mesh, meshTcp);
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
    const { app, mesh } = this.#options;
    // The mesh side closed before its end frame (framed), or without any end at all (raw: destroyed under us, e.g.
    // its peer's root left the bundle): a cut, never a clean end for the app.
    const cut = this.#reader === undefined ? !mesh.readableEnded : !this.#reader.ended;
    if (side === mesh && cut && !this.#resetting && !app.destroyed) this.#stop('reset');
    const other = side === app ? mesh : app;
    // Closed cleanly (FIN both ways) the other side finishes on its own; closed early, nothing the other side
    // still reads can be delivered: end it once what it has to write is flushed.
    if (!other.destroyed && !this.#resetting) {
      if (other.writableFinished) other.destroy();
      else {
        other.once('finish', () => other.destroy());
        other.end();
      }
    }
    if (--this.#open === 0) {
      this.#options.onClose(this.#end, (performance.now() - this.#startedAt) / 1000, this.#broken);
    }
  }
}
