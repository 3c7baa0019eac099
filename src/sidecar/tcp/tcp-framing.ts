// The frames of a meshauth-tcp/2 tunnel (tcp-alpn.ts): [32-bit big-endian length][that many bytes], and a frame of
// length 0 for the sender's clean end of stream. The reader hands payload slices on as they arrive (nothing is held
// back waiting for a whole frame), so a frame's length bounds nothing but its own bytes. Pure, no I/O.

/** The end-of-stream frame. */
export const END_FRAME: Buffer = Buffer.alloc(4);

/** Frames above this length are refused: no sender of ours writes more than a socket read (64 KiB). */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;

export function frameHeader(length: number): Buffer {
  const header = Buffer.allocUnsafe(4);
  header.writeUInt32BE(length, 0);
  return header;
}

export class FrameReader {
  /** Payload bytes still to come in the current frame (0: at a frame boundary). */
  #left = 0;
  readonly #header = Buffer.alloc(4);
  #headerHave = 0;
  #ended = false;

  /** The end-of-stream frame arrived, at a frame boundary. */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Feeds received bytes; `onPayload` gets each payload slice in order. Returns an error text when the bytes break
   * the framing (data after the end frame, a frame over MAX_FRAME_BYTES), undefined otherwise.
   */
  push(chunk: Buffer, onPayload: (payload: Buffer) => void): string | undefined {
    let at = 0;
    while (at < chunk.length) {
      if (this.#ended) return 'data after the end-of-stream frame';
      if (this.#left > 0) {
        const take = Math.min(this.#left, chunk.length - at);
        onPayload(chunk.subarray(at, at + take));
        this.#left -= take;
        at += take;
        continue;
      }
      const take = Math.min(4 - this.#headerHave, chunk.length - at);
      chunk.copy(this.#header, this.#headerHave, at, at + take);
      this.#headerHave += take;
      at += take;
      if (this.#headerHave < 4) break;
      this.#headerHave = 0;
      const length = this.#header.readUInt32BE(0);
      if (length > MAX_FRAME_BYTES) return `frame of ${length} bytes`;
      if (length === 0) this.#ended = true;
      else this.#left = length;
    }
    return undefined;
  }
}
