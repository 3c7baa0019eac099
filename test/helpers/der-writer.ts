// A DER writer for tests that build hostile encodings on purpose: each element can be written with its minimal
// header or, when an `EncodingNoise` says so, a non-minimal long-form length, the BER indefinite form (constructed
// elements only) or a long-form (high-tag-number) tag. Independent of src/pki/der.ts so the tests do not reuse
// the code they check.

export type HeaderForm = 'minimal' | 'long-length' | 'indefinite' | 'long-tag';

/** Decides the header form of each element written, in writing order; 'minimal' when exhausted. */
export class EncodingNoise {
  #index = 0;
  readonly forms: readonly HeaderForm[];
  constructor(forms: readonly HeaderForm[] = []) {
    this.forms = forms;
  }
  next(): HeaderForm {
    return this.forms[this.#index++] ?? 'minimal';
  }
  /** Whether any non-minimal form was actually used. */
  get used(): boolean {
    return this.forms.slice(0, this.#index).some((form) => form !== 'minimal');
  }
}

function lengthOctets(length: number): number[] {
  if (length < 0x80) return [length];
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff);
  return [0x80 | bytes.length, ...bytes];
}

/** One element: tag, length, content parts; the header form from `noise` (minimal without it). */
export function tlv(tag: number, content: readonly Uint8Array[] | Uint8Array, noise?: EncodingNoise): Buffer {
  const body = Buffer.concat(content instanceof Uint8Array ? [content] : [...content]);
  const form = noise?.next() ?? 'minimal';
  if (form === 'indefinite' && (tag & 0x20) !== 0) {
    return Buffer.concat([Buffer.from([tag, 0x80]), body, Buffer.from([0, 0])]);
  }
  if (form === 'long-length') {
    const octets = lengthOctets(body.length);
    // 0x81 for a short length, or a leading zero length octet: legal BER, never DER.
    const padded = octets.length === 1 ? [0x81, body.length] : [0x80 | octets.length, 0, ...octets.slice(1)];
    return Buffer.concat([Buffer.from([tag, ...padded]), body]);
  }
  if (form === 'long-tag') {
    // The same class and form, tag number written in the high-tag-number form.
    const number = tag & 0x1f;
    return Buffer.concat([Buffer.from([(tag & 0xe0) | 0x1f, number, ...lengthOctets(body.length)]), body]);
  }
  return Buffer.concat([Buffer.from([tag, ...lengthOctets(body.length)]), body]);
}

export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const bytes: number[] = [];
  const first = (arcs[0] as number) * 40 + (arcs[1] as number);
  for (const arc of [first, ...arcs.slice(2)]) {
    const group: number[] = [arc & 0x7f];
    for (let rest = Math.floor(arc / 128); rest > 0; rest = Math.floor(rest / 128)) group.unshift((rest & 0x7f) | 0x80);
    bytes.push(...group);
  }
  return tlv(0x06, Buffer.from(bytes));
}
