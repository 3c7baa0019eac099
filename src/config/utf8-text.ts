// Config, policy and operator files are UTF-8, decoded strictly where they are read. Decoded with replacement, a
// policy saved as Latin-1 (`groups: ["sous-traités"]`) validated with `sous-trait\uFFFDs`, a value no token claim
// has, so its deny rule never matched; a binary secret lost most of its bytes to U+FFFD without a word.
// A leading byte-order mark is dropped: it marks the encoding, it is not text. Kept, a file saved by a Windows editor
// gave U+FEFF to whatever takes the text as it is: the PKCS#12 password of `--p12-password-file`, JSON.parse of a
// JSON file (which refuses it). YAML and `.trim()` drop it anyway.
import { isUtf8 } from 'node:buffer';

export type Utf8Text =
  | { readonly ok: true; readonly text: string }
  /** `offset`: of the first byte that starts no valid UTF-8 sequence; `line`: 1-based, the line it is on. */
  | { readonly ok: false; readonly offset: number; readonly line: number };

const BYTE_ORDER_MARK = '\uFEFF';

/**
 * `bytes` as text, without a leading byte-order mark (Buffer#toString keeps it), or where the first invalid byte is
 * (counted in the file's bytes, a byte-order mark included).
 */
export function decodeUtf8(bytes: Buffer): Utf8Text {
  const lossy = bytes.toString('utf8');
  if (isUtf8(bytes)) return { ok: true, text: lossy.startsWith(BYTE_ORDER_MARK) ? lossy.slice(1) : lossy };
  // Everything before the first replacement character the decoder made re-encodes to the same bytes; a U+FFFD the
  // file holds itself (EF BF BD) is skipped over.
  let offset = 0;
  let from = 0;
  for (;;) {
    const at = lossy.indexOf('\uFFFD', from);
    if (at === -1) break; // not reached: isUtf8 said some byte is invalid
    offset += Buffer.byteLength(lossy.slice(from, at));
    if (bytes[offset] !== 0xef || bytes[offset + 1] !== 0xbf || bytes[offset + 2] !== 0xbd) {
      return { ok: false, offset, line: lineAt(lossy, at) };
    }
    offset += 3;
    from = at + 1;
  }
  return { ok: false, offset, line: lineAt(lossy, lossy.length) };
}

/** `not valid UTF-8 (byte offset N, line L)`: the tail of each reader's message. */
export function invalidUtf8Text(where: { readonly offset: number; readonly line: number }): string {
  return `not valid UTF-8 (byte offset ${where.offset}, line ${where.line}): save the file as UTF-8`;
}

function lineAt(text: string, index: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < index; i = text.indexOf('\n', i + 1)) line++;
  return line;
}
