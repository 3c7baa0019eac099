// meshauth-tcp/2 frames: whatever the split of the bytes into reads, the reader hands on exactly the payloads in
// order, knows the end frame only at a frame boundary, and refuses data after the end and oversize frames.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { END_FRAME, FrameReader, frameHeader, MAX_FRAME_BYTES } from '../../../../src/sidecar/tcp/tcp-framing.js';

const framed = (payloads: readonly Buffer[], end: boolean) =>
  Buffer.concat([...payloads.flatMap((p) => [frameHeader(p.length), p]), ...(end ? [END_FRAME] : [])]);

/** Splits `bytes` at the given cut points (each taken modulo the length). */
function split(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => (bytes.length === 0 ? 0 : c % bytes.length)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let at = 0;
  for (const point of points) {
    parts.push(bytes.subarray(at, point));
    at = point;
  }
  parts.push(bytes.subarray(at));
  return parts;
}

describe('FrameReader', () => {
  it('ok/any split of the stream: the payloads come out whole and in order, the end only at the end', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.boolean(),
        (payloads, cuts, end) => {
          const buffers = payloads.map((p) => Buffer.from(p));
          const reader = new FrameReader();
          const out: Buffer[] = [];
          for (const part of split(framed(buffers, end), cuts)) {
            expect(reader.push(part, (p) => out.push(Buffer.from(p)))).toBeUndefined();
          }
          expect(Buffer.concat(out).equals(Buffer.concat(buffers))).toBe(true);
          expect(reader.ended).toBe(end);
        },
      ),
    );
  });

  // A peer sending 1-byte frames made the tunnel write to the app once per frame (thousands of writes per socket
  // read): over ten times the sidecar CPU per byte of a bulk transfer, found by an outside test (2026-12-03).
  it('ok/the payloads of many frames in one read are handed on in one piece', () => {
    const payloads = Array.from({ length: 5000 }, (_, i) => Buffer.from([i % 256]));
    const reader = new FrameReader();
    const out: Buffer[] = [];
    expect(reader.push(framed(payloads, false), (p) => out.push(Buffer.from(p)))).toBeUndefined();
    expect(out).toHaveLength(1);
    expect(out[0]?.equals(Buffer.concat(payloads))).toBe(true);
  });

  it('ok/the payload before a framing break is still handed on', () => {
    const reader = new FrameReader();
    const out: Buffer[] = [];
    const bytes = Buffer.concat([framed([Buffer.from('ab'), Buffer.from('cd')], true), frameHeader(1)]);
    expect(reader.push(bytes, (p) => out.push(Buffer.from(p)))).toMatch(/after the end/);
    expect(Buffer.concat(out).toString()).toBe('abcd');
  });

  it('fail/a stream cut inside a frame or its header is not ended', () => {
    const whole = framed([Buffer.from('SET k value')], true);
    for (let cut = 0; cut < whole.length; cut++) {
      const reader = new FrameReader();
      reader.push(whole.subarray(0, cut), () => undefined);
      expect(reader.ended).toBe(false);
    }
  });

  it('fail/data after the end frame is refused', () => {
    const reader = new FrameReader();
    expect(reader.push(Buffer.concat([END_FRAME, frameHeader(1), Buffer.from('x')]), () => undefined)).toMatch(
      /after the end/,
    );
  });

  it('fail/a frame longer than MAX_FRAME_BYTES is refused before any of it is handed on', () => {
    const reader = new FrameReader();
    const seen: Buffer[] = [];
    expect(
      reader.push(Buffer.concat([frameHeader(MAX_FRAME_BYTES + 1), Buffer.alloc(8)]), (p) => seen.push(p)),
    ).toMatch(/frame of/);
    expect(seen).toEqual([]);
  });
});
