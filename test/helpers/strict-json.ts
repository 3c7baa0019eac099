// A strict JSON reader for log-line tests: JSON.parse silently keeps the last of two equal keys, this one throws,
// so a test can assert that every line a process writes is JSON a strict consumer accepts (RFC 8259 §4 "names
// within an object SHOULD be unique"; many log pipelines refuse or mangle duplicates).
export function parseStrictJson(text: string): unknown {
  let at = 0;
  const ws = (): void => {
    while (at < text.length && ' \t\n\r'.includes(text[at] as string)) at++;
  };
  const fail = (why: string): never => {
    throw new SyntaxError(`${why} at ${at} in ${text.slice(0, 200)}`);
  };
  const value = (): unknown => {
    ws();
    const c = text[at];
    if (c === '{') {
      at++;
      const out: Record<string, unknown> = {};
      const seen = new Set<string>();
      ws();
      if (text[at] === '}') {
        at++;
        return out;
      }
      for (;;) {
        ws();
        if (text[at] !== '"') fail('expected a key');
        const key = string();
        if (seen.has(key)) fail(`duplicate key ${JSON.stringify(key)}`);
        seen.add(key);
        ws();
        if (text[at++] !== ':') fail('expected ":"');
        Object.defineProperty(out, key, { value: value(), enumerable: true, writable: true, configurable: true });
        ws();
        const next = text[at++];
        if (next === '}') return out;
        if (next !== ',') fail('expected "," or "}"');
      }
    }
    if (c === '[') {
      at++;
      const out: unknown[] = [];
      ws();
      if (text[at] === ']') {
        at++;
        return out;
      }
      for (;;) {
        out.push(value());
        ws();
        const next = text[at++];
        if (next === ']') return out;
        if (next !== ',') fail('expected "," or "]"');
      }
    }
    if (c === '"') return string();
    const literal = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(at));
    if (literal === null) return fail('unexpected character');
    at += literal[0].length;
    return JSON.parse(literal[0]) as unknown;
  };
  const string = (): string => {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: JSON strings must not hold raw control characters.
    const match = /^"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/.exec(text.slice(at));
    if (match === null) return fail('bad string');
    at += match[0].length;
    return JSON.parse(match[0]) as string;
  };
  const result = value();
  ws();
  if (at !== text.length) fail('trailing characters');
  return result;
}
