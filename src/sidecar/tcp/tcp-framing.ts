// The frames of a meshauth-tcp/2 tunnel (tcp-alpn.ts): [32-bit big-endian length][that many bytes], and a frame of
// length 0 for the sender's clean end of stream. The reader hands payload bytes on as they arrive (nothing is held
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
   * Feeds received bytes; `onPayload` gets the payload bytes of the chunk in order, at most once per call: the
   * payloads of several frames in one chunk are joined. A peer that sends many tiny frames would otherwise cost one
   * app write per frame, and a socket read of 5-byte frames thousands of writes. Returns an error text when the
   * bytes break the framing (data after the end frame, a frame over MAX_FRAME_BYTES), undefined otherwise; the
   * payload before the break is still handed on.
   */
  push(chunk: Buffer, onPayload: (payload: Buffer) => void): string | undefined {
    // The first payload is a view of the chunk; from the second on, payloads are copied into one buffer.
    let first: Buffer | undefined;
    let joined: Buffer | undefined;
    let bytes = 0;
    const collect = (start: number, end: number) => {
      if (joined !== undefined) bytes += chunk.copy(joined, bytes, start, end);
      else if (first === undefined) first = chunk.subarray(start, end);
      else {
        joined = Buffer.allocUnsafe(first.length + chunk.length - start);
        bytes = first.copy(joined, 0);
        bytes += chunk.copy(joined, bytes, start, end);
      }
    };
    const handOn = () => {
      if (joined !== undefined) onPayload(joined.subarray(0, bytes));
      else if (first !== undefined) onPayload(first);
    };
    let at = 0;
    while (at < chunk.length) {
      if (this.#ended) {
        handOn();
        return 'data after the end-of-stream frame';
      }
      if (this.#left > 0) {
        const length = Math.min(this.#left, chunk.length - at);
        collect(at, at + length);
        this.#left -= length;
        at += length;
        continue;
      }
      const take = Math.min(4 - this.#headerHave, chunk.length - at);
      chunk.copy(this.#header, this.#headerHave, at, at + take);
      this.#headerHave += take;
      at += take;
      if (this.#headerHave < 4) break;
      this.#headerHave = 0;
      const length = this.#header.readUInt32BE(0);
      if (length > MAX_FRAME_BYTES) {
        handOn();
        return `frame of ${length} bytes`;
      }
      if (length === 0) this.#ended = true;
      else this.#left = length;
    }
    handOn();
    return undefined;
  }
}
