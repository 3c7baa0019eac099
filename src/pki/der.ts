// A minimal strict DER reader and writer for the CA's hot path: splitting a PKCS#10 request or a leaf
// certificate into its parts costs microseconds here against about a millisecond in the JavaScript ASN.1 object
// model. Only definite, minimally encoded lengths and single-byte tags are read; anything else is "not understood"
// (undefined), and the callers then take their general path, which names the malformation as it always did.

export interface DerElement {
  readonly tag: number;
  /** Offset of the tag byte. */
  readonly start: number;
  /** Offset of the first content byte. */
  readonly contentStart: number;
  /** Offset just past the content. */
  readonly end: number;
}

/** The element at `offset`, or undefined when its header is not strict DER or it runs past `limit`. */
export function readDer(der: Uint8Array, offset: number, limit = der.length): DerElement | undefined {
  if (offset + 2 > limit) return undefined;
  const tag = der[offset] as number;
  // High-tag-number form (low five bits all set) never occurs in the structures read here.
  if ((tag & 0x1f) === 0x1f) return undefined;
  const first = der[offset + 1] as number;
  let length: number;
  let contentStart: number;
  if (first < 0x80) {
    length = first;
    contentStart = offset + 2;
  } else {
    const octets = first & 0x7f;
    // 0x80 is the indefinite form (BER only); more than 3 length octets is more than 16 MiB.
    if (octets === 0 || octets > 3 || offset + 2 + octets > limit) return undefined;
    if (der[offset + 2] === 0) return undefined; // not minimal
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + (der[offset + 2 + i] as number);
    if (length < 0x80) return undefined; // not minimal
    contentStart = offset + 2 + octets;
  }
  const end = contentStart + length;
  if (end > limit) return undefined;
  return { tag, start: offset, contentStart, end };
}

/** The children of a constructed element, which must exactly fill it; undefined otherwise. */
export function derChildren(der: Uint8Array, parent: DerElement): DerElement[] | undefined {
  const children: DerElement[] = [];
  for (let offset = parent.contentStart; offset < parent.end; ) {
    const child = readDer(der, offset, parent.end);
    if (child === undefined) return undefined;
    children.push(child);
    offset = child.end;
  }
  return children;
}

/** Whether `element` and everything inside its constructed descendants is well-formed strict DER. */
export function derWellFormed(der: Uint8Array, element: DerElement, depth = 0): boolean {
  if ((element.tag & 0x20) === 0) return true;
  if (depth > 16) return false;
  const children = derChildren(der, element);
  if (children === undefined) return false;
  // A loop, not every() with an arrow: an arrow made anew at each level of each call is compiled again and again.
  for (const child of children) if (!derWellFormed(der, child, depth + 1)) return false;
  return true;
}

/** Dotted form of an OBJECT IDENTIFIER element's content; undefined when malformed. */
export function derOid(der: Uint8Array, element: DerElement): string | undefined {
  if (element.tag !== 0x06 || element.end === element.contentStart) return undefined;
  const arcs: number[] = [];
  let value = 0;
  for (let i = element.contentStart; i < element.end; i++) {
    const byte = der[i] as number;
    if (value === 0 && byte === 0x80) return undefined; // leading 0x80: not minimal
    value = value * 128 + (byte & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 128) return undefined;
    if ((byte & 0x80) === 0) {
      arcs.push(value);
      value = 0;
    }
  }
  if ((der[element.end - 1] as number) & 0x80) return undefined;
  const first = arcs[0] as number;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs.slice(1)].join('.');
}

export function derBytes(der: Uint8Array, element: DerElement): Buffer {
  return Buffer.from(der.buffer, der.byteOffset + element.start, element.end - element.start);
}

export function derContent(der: Uint8Array, element: DerElement): Buffer {
  return Buffer.from(der.buffer, der.byteOffset + element.contentStart, element.end - element.contentStart);
}

// --- writing ---

export function derHeader(tag: number, length: number): Buffer {
  if (length < 0x80) return Buffer.from([tag, length]);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff);
  return Buffer.from([tag, 0x80 | bytes.length, ...bytes]);
}

/** One element: tag, minimal length, then the concatenated content parts. */
export function derTlv(tag: number, ...content: readonly Uint8Array[]): Buffer {
  let length = 0;
  for (const part of content) length += part.length;
  return Buffer.concat([derHeader(tag, length), ...content]);
}

const INTEGER = 0x02;
const ZERO = Buffer.from([0]);

/** A non-negative big-endian integer as a minimal DER INTEGER: no redundant leading zero, a 00 before a high bit. */
export function derUnsignedInteger(bytes: Uint8Array): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const value = bytes.subarray(start);
  return value.length === 0 || (value[0] as number) & 0x80 ? derTlv(INTEGER, ZERO, value) : derTlv(INTEGER, value);
}
