// Whether an Authorization value that is not a Bearer credential holds a JWT's claims as some JWT decoder would read
// them. Apps that take a token with `substring(7)` or an unanchored /Bearer\s+(\S+)/ read one from `Token <jwt>`,
// `Bearer,<jwt>` or `Basic …, Bearer <jwt>`, unverified, so such a value is refused. Decoders differ in what they read
// as the claims segment and how leniently they read base64, so every plausible reading is tried:
// - the segment: each run between two dots (jose, Go), and each word's text after its first dot with later dots
//   dropped (PyJWT takes everything between the first and the last dot);
// - the alphabet: both base64 alphabets, or only the standard one (Python's b64decode, PHP and Ruby skip `-` and
//   `_`), or only the URL-safe one (`+` and `/` skipped);
// - padding: `=` skipped and read across, or ending a quad so the next character starts a new one.
// A reading is the claims when its bytes open a JSON object with a member: `{`, `"`, a key, `"`, `:`, with
// whitespace, NULs (UTF-16 and UTF-32 text, which Python's json reads) and byte order mark bytes skipped between
// them. Basic and Negotiate credentials have no `.`; Digest's dotted values (`realm="api.example.com"`) open no `{"`;
// random opaque dotted credentials (a bot token's `id.time.mac`) open `{"<key>":` about once in 10^8. Pure.
//
// Cost: a reading stops at the first byte that breaks `{"key":`; one that has passed more than SKIP_LIMIT characters
// or bytes that count for nothing, or KEY_LIMIT key bytes, is taken as claims (no credential hides its first bytes
// behind that much), so a hostile value costs a bounded number of steps per character.

/** Characters, or decoded bytes, a reading may pass over before it decides; past it the value is refused. */
const SKIP_LIMIT = 64;

/** The longest first key a reading follows; a longer one is taken as claims (`{"` and that many key bytes). */
const KEY_LIMIT = 128;

/** Where a reading is in `{"key":`. */
const WANT_BRACE = 0;
const WANT_QUOTE = 1;
const IN_KEY = 2;
const WANT_COLON = 3;

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const PLUS = 0x2b;
const SLASH = 0x2f;
const MINUS = 0x2d;
const UNDERSCORE = 0x5f;
const EQUALS = 0x3d;
const DOT = 0x2e;

/** Each base64 and base64url character's six bits; -1 for every other character. */
const SEXTETS: Int8Array = (() => {
  const table = new Int8Array(128).fill(-1);
  for (let i = 0; i < ALPHABET.length; i++) table[ALPHABET.charCodeAt(i)] = i;
  table[PLUS] = 62;
  table[MINUS] = 62;
  table[SLASH] = 63;
  table[UNDERSCORE] = 63;
  return table;
})();

/** Bytes a JSON reader passes over before a value or a key: whitespace, NUL (UTF-16/32), byte order mark bytes. */
const PASSED_BYTES: ReadonlySet<number> = new Set([0x20, 0x09, 0x0a, 0x0d, 0x00, 0xef, 0xbb, 0xbf, 0xfe, 0xff]);

/** Readings: which characters one skips (the low two bits), and whether `=` ends a quad. */
const BOTH_ALPHABETS = 0;
const STANDARD_ONLY = 1;
const URL_SAFE_ONLY = 2;
const QUAD_AT_PADDING = 4;

/** What a reading saw before it decided: the characters another reading would take otherwise. */
const SAW_URL_SAFE = 1;
const SAW_STANDARD = 2;
const SAW_PADDING = 4;

const OPENS = -1;

/** True when some reading of some segment of `value` opens a JSON object with a member (see above). */
export function carriesJwtClaims(value: string): boolean {
  let wordStart = 0;
  let firstDot = -1;
  for (let i = 0; i <= value.length; i++) {
    const code = i < value.length ? value.charCodeAt(i) : 0x20;
    if (code === 0x20 || code === 0x09 || code === 0x2c /* , */ || code === 0x0a || code === 0x0d) {
      // A word ends: its text after its first dot, later dots dropped.
      if (firstDot !== -1 && opens(value, firstDot + 1, i)) return true;
      wordStart = i + 1;
      firstDot = -1;
      continue;
    }
    if (code !== DOT) continue;
    if (firstDot === -1 && i >= wordStart) firstDot = i;
    // A run between two dots (or from a dot to the end of the value).
    let next = value.indexOf('.', i + 1);
    if (next === -1) next = value.length;
    if (next - i > 3 && opens(value, i + 1, next)) return true;
  }
  return false;
}

/** Whether any reading of `text[from, to)` opens a JSON object with a member. */
function opens(text: string, from: number, to: number): boolean {
  const seen = read(text, from, to, BOTH_ALPHABETS);
  if (seen === OPENS) return true;
  if (seen === 0) return false; // nothing another reading would take otherwise came before the decision
  if ((seen & SAW_PADDING) !== 0 && read(text, from, to, BOTH_ALPHABETS | QUAD_AT_PADDING) === OPENS) return true;
  // A one-alphabet reading goes on past the characters it skips: its own `=` decides whether its quad reading counts.
  for (const [flag, alphabet] of [
    [SAW_URL_SAFE, STANDARD_ONLY],
    [SAW_STANDARD, URL_SAFE_ONLY],
  ] as const) {
    if ((seen & flag) === 0) continue;
    const own = read(text, from, to, alphabet);
    if (own === OPENS) return true;
    if ((own & SAW_PADDING) !== 0 && read(text, from, to, alphabet | QUAD_AT_PADDING) === OPENS) return true;
  }
  return false;
}

/**
 * One reading of `text[from, to)`: OPENS when its bytes open `{"key":`, else the SAW_* flags of the characters it
 * met before it decided (another reading differs from this one only if one of them came first).
 */
function read(text: string, from: number, to: number, reading: number): number {
  const alphabet = reading & 3;
  const quadAtPadding = (reading & QUAD_AT_PADDING) !== 0;
  let bits = 0;
  let pending = 0;
  let state = WANT_BRACE;
  let keyBytes = 0;
  let escaped = false;
  let passed = 0;
  let seen = 0;
  for (let i = from; i < to; i++) {
    const code = text.charCodeAt(i);
    if (code === EQUALS) {
      seen |= SAW_PADDING;
      if (quadAtPadding) pending = 0;
      if (++passed > SKIP_LIMIT) return OPENS;
      continue;
    }
    if (code === MINUS || code === UNDERSCORE) {
      seen |= SAW_URL_SAFE;
      if (alphabet === STANDARD_ONLY) {
        if (++passed > SKIP_LIMIT) return OPENS;
        continue;
      }
    } else if (code === PLUS || code === SLASH) {
      seen |= SAW_STANDARD;
      if (alphabet === URL_SAFE_ONLY) {
        if (++passed > SKIP_LIMIT) return OPENS;
        continue;
      }
    }
    const sextet = code < 128 ? (SEXTETS[code] as number) : -1;
    if (sextet === -1) {
      if (code !== DOT && ++passed > SKIP_LIMIT) return OPENS;
      continue;
    }
    bits = ((bits << 6) | sextet) & 0xfff;
    pending += 6;
    if (pending < 8) continue;
    pending -= 8;
    const byte = (bits >> pending) & 0xff;
    if (state === IN_KEY && byte !== 0) {
      if (escaped) escaped = false;
      else if (byte === 0x5c /* \ */) escaped = true;
      else if (byte === 0x22 /* " */) state = WANT_COLON;
      else if (byte < 0x20) return seen; // a control character: no JSON key
      if (state === IN_KEY && ++keyBytes > KEY_LIMIT) return OPENS;
      continue;
    }
    if (PASSED_BYTES.has(byte)) {
      if (++passed > SKIP_LIMIT) return OPENS;
      continue;
    }
    if (state === WANT_COLON) return byte === 0x3a /* : */ ? OPENS : seen;
    if (byte !== (state === WANT_BRACE ? 0x7b /* { */ : 0x22) /* " */) return seen;
    state = state === WANT_BRACE ? WANT_QUOTE : IN_KEY;
  }
  return seen;
}
